"""Errors and decisions, in runc's style, and where an operator finds them.

An error is one line on stderr and a record in the `--log` file in `--log-format`
(runc's logrus text, or its JSON lines that containerd parses). Decisions go to the
`--log` file at info level.

CRI-O never passes `--log`, so decisions and errors also go to the node's log target
(`[log] target` in the node config): by default the systemd journal when its socket
exists, else syslog (`/dev/log`) when it exists, or a file, or nowhere. Node records are
held until the call hands over to runc (or fails) and then sent together as one entry: a
call pays at most one datagram, and a call that decides nothing (state, start, kill, ...)
none.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

    from runwasm.config import NodeConfig

_LEVELS: Final = {"debug": 0, "info": 1, "warn": 2, "warning": 2, "error": 3}
# syslog severities (RFC 5424), which the journal's PRIORITY field uses too.
_SEVERITY: Final = {"debug": 7, "info": 6, "warn": 4, "warning": 4, "error": 3}
_SYSLOG_FACILITY_DAEMON: Final = 3
IDENTIFIER: Final = "runwasm"


def _timestamp() -> str:
    now = time.time()
    nanos = int((now % 1) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{nanos:09d}Z"


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def format_record(level: str, msg: str, fmt: str) -> str:
    if fmt == "json":
        return f'{{"level":"{level}","msg":"{_escape(msg)}","time":"{_timestamp()}"}}\n'
    return f'time="{_timestamp()}" level={level} msg="{_escape(msg)}"\n'


class Log:
    __slots__ = ("path", "fmt", "debug", "container_id", "node_target", "node_file",
                 "node_level", "journal_socket", "syslog_socket", "_pending")

    def __init__(self, path: str = "", fmt: str = "text", *, debug: bool = False,
                 container_id: str = "", node_target: str = "none", node_file: str = "",
                 node_level: str = "info", journal_socket: str = "",
                 syslog_socket: str = "") -> None:
        self.path = path
        self.fmt = fmt if fmt in ("text", "json") else "text"
        self.debug = debug
        self.container_id = container_id
        self.node_target = node_target
        self.node_file = node_file
        self.node_level = node_level
        self.journal_socket = journal_socket
        self.syslog_socket = syslog_socket
        self._pending: list[tuple[str, str]] = []

    def use_node_config(self, config: NodeConfig) -> None:
        self.node_target = config.log_target
        self.node_file = config.log_file
        self.node_level = config.log_level
        self.journal_socket = config.journal_socket
        self.syslog_socket = config.syslog_socket

    def record(self, level: str, msg: str) -> None:
        if self.path and (level != "debug" or self.debug):
            _append(self.path, format_record(level, msg, self.fmt))
        if self.node_target != "none" and _LEVELS[level] >= _LEVELS.get(self.node_level, 1):
            self._pending.append((level, msg))

    def info(self, msg: str) -> None:
        self.record("info", msg)

    def error(self, msg: str) -> None:
        """The one line a user sees, plus the log record."""
        # Paths may not be UTF-8: show their bytes escaped rather than fail.
        shown = msg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        try:
            sys.stderr.write(shown + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        self.record("error", msg)

    def flush(self) -> None:
        """Send the held node records as one entry (call before handing over to runc)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        level = max((lvl for lvl, _ in pending), key=lambda lvl: _LEVELS[lvl])
        message = "; ".join(_strip_prefix(msg) for _, msg in pending)
        target = self.resolved_target()
        if target == "journal":
            _send(self.journal_socket, journal_entry(level, message, self.container_id))
        elif target == "syslog":
            _send(self.syslog_socket, syslog_line(level, message, self.container_id))
        elif target == "file":
            shown = f"container {self.container_id}: {message}" if self.container_id else message
            _append(self.node_file, format_record(level, shown, "text"))

    def resolved_target(self) -> str:
        """`auto`: the file when one is set, else the journal if its socket exists, else
        syslog if its socket exists, else none (sending to no socket would load the
        socket module for nothing)."""
        if self.node_target != "auto":
            return self.node_target
        if self.node_file:
            return "file"
        if self.journal_socket and _is_socket(self.journal_socket):
            return "journal"
        return "syslog" if self.syslog_socket and _is_socket(self.syslog_socket) else "none"


def _strip_prefix(msg: str) -> str:
    return msg[len("runwasm: "):] if msg.startswith("runwasm: ") else msg


def _field(name: str, value: str) -> bytes:
    """One field of the journal's native protocol; values with newlines carry a length."""
    data = value.encode("utf-8", "surrogateescape")
    if b"\n" not in data:
        return name.encode() + b"=" + data + b"\n"
    return name.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"


def journal_entry(level: str, message: str, container_id: str = "") -> bytes:
    """A journal entry: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and, when known, the
    container id as conmon names it (CONTAINER_ID short, CONTAINER_ID_FULL)."""
    parts = [_field("MESSAGE", message), _field("PRIORITY", str(_SEVERITY[level])),
             _field("SYSLOG_IDENTIFIER", IDENTIFIER)]
    if container_id:
        parts += [_field("CONTAINER_ID", container_id[:12]),
                  _field("CONTAINER_ID_FULL", container_id)]
    return b"".join(parts)


def parse_journal_entry(data: bytes) -> dict[str, str]:
    """The fields of one native-protocol entry (the inverse of journal_entry), for the
    tests and tools that listen where runwasm sends; ValueError if malformed."""
    fields: dict[str, str] = {}
    while data:
        line, sep, rest = data.partition(b"\n")
        if not sep:
            raise ValueError("a journal field must end with a newline")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            data = rest
        else:
            size = int.from_bytes(rest[:8], "little")
            key, value = line, rest[8:8 + size]
            if len(value) != size or rest[8 + size:9 + size] != b"\n":
                raise ValueError(f"journal field {line!r}: bad length")
            data = rest[9 + size:]
        fields[key.decode()] = value.decode("utf-8", "replace")
    return fields


def syslog_line(level: str, message: str, container_id: str = "") -> bytes:
    """An RFC 3164 line as glibc's syslog(3) sends it to /dev/log."""
    pri = _SYSLOG_FACILITY_DAEMON * 8 + _SEVERITY[level]
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
    where = f"container {container_id}: " if container_id else ""
    text = f"<{pri}>{stamp} {IDENTIFIER}[{os.getpid()}]: {where}{message}"
    return text.replace("\n", " ").encode("utf-8", "surrogateescape")


def _is_socket(path: str) -> bool:
    try:
        return (os.stat(path).st_mode & 0o170000) == 0o140000  # S_IFSOCK, without `stat`
    except OSError:
        return False


def _send(path: str, data: bytes) -> None:
    """One datagram; a log that is not there must not turn success into failure."""
    import _socket  # the C module: `socket` would import enum, selectors, ...

    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    except OSError:
        return
    try:
        sock.sendto(data, path)
    except OSError:
        pass
    finally:
        sock.close()


def _append(path: str, line: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return  # a log we cannot open must not turn success into failure
    try:
        os.write(fd, line.encode("utf-8", "surrogateescape"))  # paths may not be UTF-8
    finally:
        os.close(fd)

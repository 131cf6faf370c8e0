"""Errors and decisions, in runc's style.

An error is one line on stderr and a record in the `--log` file in `--log-format`
(runc's logrus text, or its JSON lines that containerd parses). Decisions go to the
`--log` file at info level, and to the node log file when one is configured.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

_LEVELS: Final = {"debug": 0, "info": 1, "warn": 2, "warning": 2, "error": 3}


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
    __slots__ = ("path", "fmt", "debug", "node_file", "node_level")

    def __init__(self, path: str = "", fmt: str = "text", *, debug: bool = False,
                 node_file: str = "", node_level: str = "info") -> None:
        self.path = path
        self.fmt = fmt if fmt in ("text", "json") else "text"
        self.debug = debug
        self.node_file = node_file
        self.node_level = node_level

    def record(self, level: str, msg: str) -> None:
        if self.path and (level != "debug" or self.debug):
            _append(self.path, format_record(level, msg, self.fmt))
        if self.node_file and _LEVELS[level] >= _LEVELS.get(self.node_level, 1):
            _append(self.node_file, format_record(level, msg, "text"))

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


def _append(path: str, line: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return  # a log we cannot open must not turn success into failure
    try:
        os.write(fd, line.encode("utf-8", "surrogateescape"))  # paths may not be UTF-8
    finally:
        os.close(fd)

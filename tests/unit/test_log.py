"""runwasm.handler.log: records in runc's text and JSON log formats."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runwasm.handler.log import Log, format_record, journal_entry, parse_journal_entry

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"
TEXT_RECORD = re.compile(r'time="(' + TIME + r')" level=(\w+) msg="((?:[^"\\]|\\.)*)"\n')
SETTINGS = settings(max_examples=200, deadline=None, database=None)


def test_json_record() -> None:
    line = format_record("error", "runwasm: something failed", "json")
    assert line.endswith("\n")
    assert line.count("\n") == 1
    record = json.loads(line)
    assert set(record) == {"level", "msg", "time"}
    assert record["level"] == "error"
    assert record["msg"] == "runwasm: something failed"
    assert re.fullmatch(TIME, record["time"])


def test_text_record() -> None:
    line = format_record("info", "runwasm: linux: no Wasm annotation", "text")
    match = TEXT_RECORD.fullmatch(line)
    assert match is not None
    assert match.group(2) == "info"
    assert match.group(3) == "runwasm: linux: no Wasm annotation"


def test_unknown_format_is_text() -> None:
    assert TEXT_RECORD.fullmatch(format_record("warn", "x", "logfmt"))


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_quotes_backslashes_newlines_escaped(fmt: str) -> None:
    msg = 'a "quoted" \\path\\ with\nnew\r\nlines\tand\x00nul\x1b[0m'
    line = format_record("error", msg, fmt)
    assert line.count("\n") == 1
    assert line.endswith("\n")
    assert "\r" not in line
    assert "\x00" not in line
    if fmt == "json":
        assert json.loads(line)["msg"] == msg
    else:
        match = TEXT_RECORD.fullmatch(line)
        assert match is not None
        assert json.loads('"' + match.group(3) + '"') == msg


@SETTINGS
@given(st.sampled_from(["debug", "info", "warn", "error"]), st.text())
def test_json_record_any_message(level: str, msg: str) -> None:
    line = format_record(level, msg, "json")
    assert line.endswith("\n")
    assert "\n" not in line[:-1]
    record = json.loads(line)
    assert record["level"] == level
    assert record["msg"] == msg
    assert re.fullmatch(TIME, record["time"])


@SETTINGS
@given(st.text())
def test_text_record_any_message(msg: str) -> None:
    line = format_record("info", msg, "text")
    assert "\n" not in line[:-1]
    match = TEXT_RECORD.fullmatch(line)
    assert match is not None
    assert json.loads('"' + match.group(3) + '"') == msg


# ---------------------------------------------------------------------------------------
# Log


def test_log_error_writes_stderr_and_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runc.log"
    log = Log(str(path), "json")
    log.error("runwasm: bad thing")
    assert capsys.readouterr().err == "runwasm: bad thing\n"
    log.error("runwasm: second")
    lines = path.read_text().splitlines()
    assert [json.loads(x)["msg"] for x in lines] == ["runwasm: bad thing", "runwasm: second"]
    assert all(json.loads(x)["level"] == "error" for x in lines)


def test_log_info_not_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runc.log"
    Log(str(path), "text").info("decided")
    assert capsys.readouterr().err == ""
    match = TEXT_RECORD.fullmatch(path.read_text())
    assert match is not None
    assert match.group(2) == "info"


def test_log_debug_only_with_debug(tmp_path: Path) -> None:
    path = tmp_path / "runc.log"
    Log(str(path), "json").record("debug", "quiet")
    assert not path.exists()
    Log(str(path), "json", debug=True).record("debug", "loud")
    assert json.loads(path.read_text())["msg"] == "loud"


def test_log_bad_format_falls_back_to_text(tmp_path: Path) -> None:
    path = tmp_path / "runc.log"
    Log(str(path), "yaml").info("x")
    assert TEXT_RECORD.fullmatch(path.read_text())


def test_log_without_path_writes_nothing(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    Log().info("nowhere")
    Log().error("only stderr")
    assert capsys.readouterr().err == "only stderr\n"
    assert list(tmp_path.iterdir()) == []


def test_log_node_file_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = tmp_path / "node.log"
    log = Log("", "json", node_target="file", node_file=str(node), node_level="warn")
    log.info("skipped")
    log.record("warn", "kept warn")
    log.error("kept error")
    assert not node.exists()  # held until the call hands over or fails
    log.flush()
    capsys.readouterr()
    lines = node.read_text().splitlines()
    assert len(lines) == 1  # one entry per call, at the worst level it holds
    match = TEXT_RECORD.fullmatch(lines[0] + "\n")  # the node file is always text
    assert match is not None
    assert (match.group(2), match.group(3)) == ("error", "kept warn; kept error")


def test_log_unwritable_path_is_ignored(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    log = Log(str(tmp_path / "no" / "such" / "dir.log"), "json")
    log.info("x")
    log.error("still reported")
    assert capsys.readouterr().err == "still reported\n"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_message_with_undecodable_path(tmp_path: Path, fmt: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runc.log"
    bad = b"/bundles/\xff/config.json".decode("utf-8", "surrogateescape")
    Log(str(path), fmt).error(f"runwasm: read {bad}: No such file or directory")
    assert "No such file" in capsys.readouterr().err
    assert path.read_bytes().count(b"\n") == 1


# ---------------------------------------------------------------------------------------
# journal and syslog: a socket of the test's own stands for journald / syslogd


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "journal.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


CONTAINER = "c0ffee" * 10 + "abcd"


def test_journal_one_entry_per_call(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    log = Log(container_id=CONTAINER, node_target="journal", journal_socket=path)
    log.info("runwasm: wasm: module.wasm.image/variant=compat: /hello.wasm (core)")
    log.info("runwasm: engine wasmtime 27.0.0")
    log.flush()
    log.flush()  # nothing held: nothing sent
    fields = parse_journal_entry(sock.recv(65536))
    assert fields == {
        "MESSAGE": "wasm: module.wasm.image/variant=compat: /hello.wasm (core); "
                   "engine wasmtime 27.0.0",
        "PRIORITY": "6", "SYSLOG_IDENTIFIER": "runwasm",
        "CONTAINER_ID": CONTAINER[:12], "CONTAINER_ID_FULL": CONTAINER}
    sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        sock.recv(65536)


def test_journal_error_priority_and_newlines(listener: tuple[socket.socket, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    sock, path = listener
    log = Log(node_target="journal", journal_socket=path)
    log.error("runwasm: bad\nthing")
    log.flush()
    fields = parse_journal_entry(sock.recv(65536))
    assert fields["MESSAGE"] == "bad\nthing"
    assert fields["PRIORITY"] == "3"
    assert "CONTAINER_ID" not in fields
    assert capsys.readouterr().err == "runwasm: bad\nthing\n"


def test_auto_prefers_journal_then_syslog(listener: tuple[socket.socket, str],
                                         tmp_path: Path) -> None:
    sock, path = listener
    auto = Log(node_target="auto", journal_socket=path, syslog_socket="/nonexistent")
    assert auto.resolved_target() == "journal"
    no_journal = Log(node_target="auto", journal_socket=str(tmp_path / "none.sock"),
                     syslog_socket=path)
    assert no_journal.resolved_target() == "syslog"
    neither = Log(node_target="auto", journal_socket=str(tmp_path / "none.sock"),
                  syslog_socket=str(tmp_path / "none-either.sock"))
    assert neither.resolved_target() == "none"
    assert Log(node_target="auto", node_file="/x.log").resolved_target() == "file"


def test_syslog_line(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    log = Log(container_id=CONTAINER, node_target="auto",
              journal_socket="/nonexistent/journal", syslog_socket=path)
    log.record("warn", "runwasm: careful")
    log.flush()
    line = sock.recv(65536).decode()
    match = re.fullmatch(r"<28>\w{3} [ \d]\d \d\d:\d\d:\d\d runwasm\[(\d+)\]: "
                         r"container (\w+): careful", line)
    assert match is not None, line
    assert int(match.group(1)) == os.getpid()
    assert match.group(2) == CONTAINER


def test_node_level_filters_and_none_sends_nothing(listener: tuple[socket.socket, str]
                                                   ) -> None:
    sock, path = listener
    sock.settimeout(0.2)
    for log in (Log(node_target="journal", journal_socket=path, node_level="error"),
                Log(node_target="none", journal_socket=path)):
        log.info("runwasm: quiet")
        log.flush()
        with pytest.raises(socket.timeout):
            sock.recv(65536)


def test_missing_socket_is_not_an_error(tmp_path: Path) -> None:
    log = Log(node_target="journal", journal_socket=str(tmp_path / "gone.sock"))
    log.info("runwasm: nowhere to go")
    log.flush()  # must not raise


def test_journal_entry_binary_form() -> None:
    # journald's documented form for a value holding a newline: name, newline, 64-bit
    # little-endian length, value, newline.
    entry = journal_entry("info", "two\nlines", CONTAINER)
    assert entry.startswith(b"MESSAGE\n" + (9).to_bytes(8, "little") + b"two\nlines\n")
    assert parse_journal_entry(entry)["MESSAGE"] == "two\nlines"
    with pytest.raises(ValueError):
        parse_journal_entry(b"MESSAGE\n" + (99).to_bytes(8, "little") + b"short\n")

"""runwasm.wasmfile: what a file is, and the exported functions of a core module."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from runwasm import wasmfile
from runwasm.errors import RunwasmError
from runwasm.wasmfile import function_exports, sniff, sniff_file

# A WASI command: exports _start, plus non-function exports that must not be listed.
COMMAND_WAT = """
(module
  (memory (export "memory") 1)
  (global (export "counter") i32 (i32.const 0))
  (func (export "_start"))
  (func (export "helper") (result i32) (i32.const 7)))
"""

# A WASI reactor: exports _initialize and a library function, no _start.
REACTOR_WAT = """
(module
  (table (export "table") 1 funcref)
  (func (export "_initialize"))
  (func (export "add") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add))
"""


@pytest.fixture(scope="module")
def command_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(COMMAND_WAT))


@pytest.fixture(scope="module")
def reactor_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(REACTOR_WAT))


@pytest.fixture(scope="module")
def component_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm("(component)"))


# ---------------------------------------------------------------------------------------
# sniff


@pytest.mark.parametrize(
    ("head", "name", "kind"),
    [
        (b"\0asm\x01\x00\x00\x00", "", "module"),
        (b"\0asm\x01\x00\x00\x00rest", "x.bin", "module"),
        (b"\0asm\x0d\x00\x01\x00", "", "component"),
        (b"\0asm\x0d\x00\x01\x00", "m.wat", "component"),
        (b"\x7fELF\x02\x01\x01", "", "elf"),
        (b"\x7fELF", "app.wat", "elf"),
        (b"#!/bin/sh\n", "", "script"),
        (b"#!", "", "script"),
        (b"(module)", "", "wat"),
        (b"  \n\t(module $m (func))", "", "wat"),
        (b"(component)", "", "wat"),
        (b";; comment\n;; another\n(module)", "", "wat"),
        (b"(; block\ncomment ;) (module)", "", "wat"),
        (b"\xef\xbb\xbf(module)", "", "wat"),
        (b"anything", "/x/app.wat", "wat"),
        (b"", "app.wat", "wat"),
        (b"", "", "unknown"),
        (b"hello", "", "unknown"),
        (b"\0as", "", "unknown"),
        (b"MZ\x90\x00", "app.exe", "unknown"),
        (b"(func)", "", "unknown"),
        (b";; only a comment", "", "unknown"),
        (b"asm\0", "", "unknown"),
    ],
)
def test_sniff(head: bytes, name: str, kind: str) -> None:
    assert sniff(head, name) == kind


def test_kinds_constants() -> None:
    assert wasmfile.WASM_KINDS == ("module", "component", "wat")
    assert wasmfile.MAGIC == b"\0asm"


def test_sniff_real_binaries(tmp_path: Path, command_wasm: bytes, component_wasm: bytes) -> None:
    (tmp_path / "m.wasm").write_bytes(command_wasm)
    (tmp_path / "c.wasm").write_bytes(component_wasm)
    assert sniff_file(str(tmp_path / "m.wasm")) == "module"
    assert sniff_file(str(tmp_path / "c.wasm")) == "component"


def test_sniff_file_missing_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        sniff_file(str(tmp_path / "missing.wasm"))


# ---------------------------------------------------------------------------------------
# function_exports


def _write(tmp_path: Path, data: bytes, name: str = "m.wasm") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _section_ends(module: bytes) -> set[int]:
    """Offsets at which a prefix of `module` ends exactly between sections."""
    ends = {8}
    at = 8
    while at < len(module):
        at += 1
        length = shift = 0
        while True:
            byte = module[at]
            at += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        at += length
        ends.add(at)
    return ends


def test_command_module(tmp_path: Path, command_wasm: bytes) -> None:
    # memory and global exports are not functions
    assert function_exports(_write(tmp_path, command_wasm)) == {"_start", "helper"}


def test_reactor_module(tmp_path: Path, reactor_wasm: bytes) -> None:
    assert function_exports(_write(tmp_path, reactor_wasm)) == {"_initialize", "add"}


def test_module_without_exports(tmp_path: Path) -> None:
    data = bytes(wasmtime.wat2wasm("(module (func) (memory 1))"))
    assert function_exports(_write(tmp_path, data)) == set()


def test_header_only_module(tmp_path: Path) -> None:
    assert function_exports(_write(tmp_path, b"\0asm\x01\x00\x00\x00")) == set()


def test_exports_after_custom_sections(tmp_path: Path) -> None:
    data = bytes(wasmtime.wat2wasm('(module (func $f (export "_start")))'))
    custom = b"\x00" + _leb(len(_leb(4) + b"name" + b"xyz")) + _leb(4) + b"name" + b"xyz"
    module = data[:8] + custom + data[8:] + custom
    wasmtime.Module.validate(wasmtime.Engine(), module)
    assert function_exports(_write(tmp_path, module)) == {"_start"}


def test_many_exports_long_names(tmp_path: Path) -> None:
    names = [f"f{i}_" + "x" * 150 for i in range(200)]
    wat = "(module " + " ".join(f'(func (export "{n}"))' for n in names) + ")"
    assert function_exports(_write(tmp_path, bytes(wasmtime.wat2wasm(wat)))) == set(names)


def test_truncated_by_one_byte(tmp_path: Path, command_wasm: bytes) -> None:
    path = _write(tmp_path, command_wasm[:-1])
    with pytest.raises(RunwasmError) as info:
        function_exports(path)
    assert path in str(info.value)


def test_every_truncation_inside_a_section_fails(tmp_path: Path, reactor_wasm: bytes) -> None:
    ends = _section_ends(reactor_wasm)
    assert len(reactor_wasm) in ends
    for size in range(len(reactor_wasm)):
        path = _write(tmp_path, reactor_wasm[:size])
        if size in ends:
            assert function_exports(path) <= {"_initialize", "add"}
        else:
            with pytest.raises(RunwasmError, match="m.wasm"):
                function_exports(path)


@pytest.mark.parametrize(
    "garbage",
    [
        b"garbage",
        b"\x00",
        b"\x07\x05",
        b"\x00\xff\xff\xff\xff\x0f",
        pytest.param(
            b"\x00\x00\x00\x00",
            id="zero-padding",
        ),
        pytest.param(
            b"\x63\x00",
            id="unknown-section-id",
        ),
    ],
)
def test_garbage_appended(tmp_path: Path, command_wasm: bytes, garbage: bytes) -> None:
    data = command_wasm + garbage
    with pytest.raises(Exception):  # noqa: B017 - the engine's own verdict, any error type
        wasmtime.Module.validate(wasmtime.Engine(), data)
    path = _write(tmp_path, data)
    with pytest.raises(RunwasmError) as info:
        function_exports(path)
    assert path in str(info.value)


@pytest.mark.parametrize(
    "data",
    [b"", b"\0asm", b"\0asm\x02\x00\x00\x00", b"\x7fELF\x02\x01\x01\x00", b"(module)"],
)
def test_not_a_core_module(tmp_path: Path, data: bytes) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(RunwasmError, match="bad header"):
        function_exports(path)


def test_component_is_not_a_core_module(tmp_path: Path, component_wasm: bytes) -> None:
    with pytest.raises(RunwasmError, match="bad header"):
        function_exports(_write(tmp_path, component_wasm))


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.wasm")
    with pytest.raises(RunwasmError) as info:
        function_exports(path)
    assert path in str(info.value)


def test_export_section_longer_than_its_entries(tmp_path: Path) -> None:
    body = _leb(1) + _leb(6) + b"_start" + b"\x00" + _leb(0) + b"\x00"  # one spare byte
    module = b"\0asm\x01\x00\x00\x00" + b"\x07" + _leb(len(body)) + body
    with pytest.raises(RunwasmError, match="export section is malformed"):
        function_exports(_write(tmp_path, module))


def test_export_entries_past_section_end(tmp_path: Path) -> None:
    body = _leb(2) + _leb(1) + b"a" + b"\x00" + _leb(0)  # claims two entries, has one
    module = b"\0asm\x01\x00\x00\x00" + b"\x07" + _leb(len(body)) + body
    with pytest.raises(RunwasmError):
        function_exports(_write(tmp_path, module))


def test_overlong_leb(tmp_path: Path) -> None:
    module = b"\0asm\x01\x00\x00\x00" + b"\x00" + b"\x80" * 6 + b"\x00"
    with pytest.raises(RunwasmError, match="too long"):
        function_exports(_write(tmp_path, module))


def test_section_length_past_end(tmp_path: Path) -> None:
    module = b"\0asm\x01\x00\x00\x00" + b"\x01" + _leb(100) + b"\x00" * 10
    with pytest.raises(RunwasmError, match="past the end"):
        function_exports(_write(tmp_path, module))


@pytest.mark.parametrize(
    "data", [b"", b"\0asm\x01\x00\x00\x00\x01\x05", b"\0asm\x01\x00\x00\x00\x00"]
)
def test_error_names_image_path_when_given(tmp_path: Path, data: bytes) -> None:
    host = _write(tmp_path, data)
    with pytest.raises(RunwasmError) as info:
        function_exports(host, "/app.wasm")
    assert "module /app.wasm " in str(info.value)
    assert host not in str(info.value)


def test_missing_file_names_image_path_when_given(tmp_path: Path) -> None:
    with pytest.raises(RunwasmError, match=r"^module /app\.wasm: "):
        function_exports(str(tmp_path / "missing.wasm"), "/app.wasm")


# ---------------------------------------------------------------------------------------
# imports, and files that are not regular


def test_imports_in_order_with_their_kinds(tmp_path: Path) -> None:
    data = bytes(wasmtime.wat2wasm("""(module
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
      (import "env" "t" (table 2 10 externref))
      (import "env" "m" (memory i64 1))
      (import "env" "g" (global f64))
      (func (export "_start")))"""))
    interface = wasmfile.read_interface(_write(tmp_path, data))
    assert interface.imports == [("wasi_snapshot_preview1", "proc_exit", "function"),
                                 ("env", "t", "table"), ("env", "m", "memory"),
                                 ("env", "g", "global")]
    assert interface.exports == {"_start"}


def test_import_names_that_are_not_utf8(tmp_path: Path) -> None:
    name = b"\xff\xfe"
    body = _leb(1) + _leb(3) + b"env" + _leb(len(name)) + name + b"\x00" + _leb(0)
    types = b"\x01" + _leb(4) + b"\x01\x60\x00\x00"  # one type: [] -> []
    module = b"\0asm\x01\x00\x00\x00" + types + b"\x02" + _leb(len(body)) + body
    assert wasmfile.read_interface(_write(tmp_path, module)).imports == [
        ("env", "\ufffd\ufffd", "function")]


def test_import_section_longer_than_its_entries(tmp_path: Path) -> None:
    body = _leb(1) + _leb(1) + b"a" + _leb(1) + b"b" + b"\x00" + _leb(0) + b"\x00"
    module = b"\0asm\x01\x00\x00\x00" + b"\x02" + _leb(len(body)) + body
    with pytest.raises(RunwasmError, match="import section is malformed"):
        wasmfile.read_interface(_write(tmp_path, module))


def test_unknown_import_kind_is_left_to_the_engine(tmp_path: Path) -> None:
    body = _leb(1) + _leb(1) + b"a" + _leb(1) + b"b" + b"\x09"
    module = b"\0asm\x01\x00\x00\x00" + b"\x02" + _leb(len(body)) + body
    assert wasmfile.read_interface(_write(tmp_path, module)).imports == []


@pytest.mark.parametrize("kind", ["directory", "FIFO"])
def test_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    import os

    path = tmp_path / "app.wasm"
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)  # opened without O_NONBLOCK, this would wait for a writer
    with pytest.raises(OSError, match=f"a {kind}, not a regular file"):
        sniff_file(str(path))
    with pytest.raises(RunwasmError, match=f"^module /app.wasm: a {kind}, not a regular file"):
        function_exports(str(path), "/app.wasm")

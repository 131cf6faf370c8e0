"""What a file is, from its first bytes, and a structural check of a core module.

Stdlib only: the handler runs this at `create` for every Wasm container, before any
engine is loaded, so a corrupt or truncated module fails `create` cleanly.
"""

from __future__ import annotations

from runwasm.errors import RunwasmError
from runwasm.files import open_regular
from runwasm.plan import COMPONENT as COMPONENT
from runwasm.plan import MODULE as MODULE
from runwasm.plan import PRECOMPILED as PRECOMPILED
from runwasm.plan import WAT as WAT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Final

MAGIC: Final = b"\0asm"
CORE_VERSION: Final = b"\x01\x00\x00\x00"
COMPONENT_VERSION: Final = b"\x0d\x00\x01\x00"  # version 0x0d, layer 1
_CUSTOM_SECTION: Final = 0
_IMPORT_SECTION: Final = 2
_EXPORT_SECTION: Final = 7
_LAST_SECTION: Final = 13  # tag section (exception handling)
_FUNC_EXPORT: Final = 0
# wasmparser's (Wasmtime's) limits; also what bounds the handler's walk of a hostile file
MAX_ENTRIES: Final = 100_000  # imports, or exports
MAX_SECTIONS: Final = 100_000

# Kinds returned by sniff(): the plan's own (runwasm.plan) and what no plan runs.
ELF, SCRIPT, UNKNOWN = "elf", "script", "unknown"
WASM_KINDS: Final = (MODULE, COMPONENT, WAT)


def sniff(head: bytes, name: str = "") -> str:
    if head.startswith(MAGIC):
        return COMPONENT if head[4:8] == COMPONENT_VERSION else MODULE
    if head.startswith(b"\x7fELF"):
        return ELF
    if head.startswith(b"#!"):
        return SCRIPT
    if name.endswith(".wat") or _looks_like_wat(head):
        return WAT
    return UNKNOWN


def _looks_like_wat(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf")
    while True:
        text = text.lstrip()
        if text.startswith(b";;"):
            text = text.partition(b"\n")[2]
        elif text.startswith(b"(;"):
            text = text.partition(b";)")[2]
        else:
            break
    return text.startswith((b"(module", b"(component"))


def sniff_file(path: str) -> str:
    """The kind of the regular file at `path`; OSError if it is anything else."""
    with open_regular(path) as f:
        kind = sniff(f.read(512), path)
        if kind == ELF and _has_wasmtime_section(f):
            return PRECOMPILED
        return kind


def _has_wasmtime_section(f: BinaryIO) -> bool:
    """Wasmtime artifacts name their sections `.wasmtime.*`; the names sit at the end."""
    size = f.seek(0, 2)
    f.seek(max(0, size - (1 << 20)))
    return b".wasmtime." in f.read()


def _leb_u32(f: BinaryIO) -> int:
    return _leb(f, 5)


def _leb(f: BinaryIO, max_bytes: int) -> int:
    result = shift = 0
    for _ in range(max_bytes):
        byte = f.read(1)
        if not byte:
            raise EOFError
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
    raise ValueError("LEB128 integer too long")


def _count(f: BinaryIO, what: str) -> int:
    count = _leb_u32(f)
    if count > MAX_ENTRIES:
        raise ValueError(f"{count} {what}, more than engines allow ({MAX_ENTRIES})")
    return count


def _name(f: BinaryIO) -> str:
    return f.read(_leb_u32(f)).decode("utf-8", "replace")


class Interface:
    """A core module's exported function names and its imports."""

    __slots__ = ("exports", "imports")

    def __init__(self) -> None:
        self.exports: set[str] = set()
        # (module, name, kind) in order; kind as IMPORT_KINDS names it
        self.imports: list[tuple[str, str, str]] = []


IMPORT_KINDS: Final = ("function", "table", "memory", "global", "tag")
_REF_WITH_HEAP_TYPE: Final = (0x63, 0x64)  # (ref null ht), (ref ht): a heap type follows


def _skip_limits(f: BinaryIO) -> None:
    flags = f.read(1)[0]
    _leb(f, 10)
    if flags & 0x01:
        _leb(f, 10)
    if flags & 0x08:  # custom page size
        _leb_u32(f)


def _skip_value_type(f: BinaryIO) -> None:
    if f.read(1)[0] in _REF_WITH_HEAP_TYPE:
        _leb(f, 5)  # s33 heap type


def _read_imports(f: BinaryIO, imports: list[tuple[str, str, str]]) -> bool:
    """Read an import section; False if a descriptor is of a kind not known here (the
    rest of the section is then not read: the engine judges it)."""
    for _ in range(_count(f, "imports")):
        module, name = _name(f), _name(f)
        kind = f.read(1)[0]
        if kind >= len(IMPORT_KINDS):
            return False
        imports.append((module, name, IMPORT_KINDS[kind]))
        if kind == 0:  # function: type index
            _leb_u32(f)
        elif kind == 1:  # table: reference type, limits
            _skip_value_type(f)
            _skip_limits(f)
        elif kind == 2:  # memory: limits
            _skip_limits(f)
        elif kind == 3:  # global: value type, mutability
            _skip_value_type(f)
            f.read(1)
        else:  # tag: attribute, type index
            f.read(1)
            _leb_u32(f)
    return True


def function_exports(path: str, name: str = "") -> set[str]:
    """A core module's exported function names (see read_interface)."""
    return read_interface(path, name).exports


def read_interface(path: str, name: str = "") -> Interface:
    """Walk a core module's sections; its exported function names and its imports.

    Raises RunwasmError naming the file (as `name`, e.g. its path in the image) when
    the sections do not tile it exactly (truncated, padded or corrupt).
    """
    found = Interface()
    shown = name or path
    try:
        with open_regular(path) as f:
            size = f.seek(0, 2)
            f.seek(0)
            header = f.read(8)
            if header[:4] != MAGIC or header[4:8] != CORE_VERSION:
                raise ValueError("not a WebAssembly core module (bad header)")
            sections = 0
            while f.tell() < size:
                sections += 1
                if sections > MAX_SECTIONS:
                    raise ValueError(f"more than {MAX_SECTIONS} sections")
                section = f.read(1)[0]
                length = _leb_u32(f)
                start = f.tell()
                if start + length > size:
                    raise ValueError(f"section {section} runs past the end of the file")
                if section > _LAST_SECTION:
                    raise ValueError(f"unknown section id {section}")
                if section == _CUSTOM_SECTION and (length == 0 or _leb_u32(f) > length - 1):
                    raise ValueError("custom section without a valid name")
                if section == _IMPORT_SECTION:
                    if _read_imports(f, found.imports) and f.tell() != start + length:
                        raise ValueError("import section is malformed")
                if section == _EXPORT_SECTION:
                    for _ in range(_count(f, "exports")):
                        export = _name(f)
                        kind = f.read(1)
                        _leb_u32(f)
                        if kind and kind[0] == _FUNC_EXPORT:
                            found.exports.add(export)
                    if f.tell() != start + length:
                        raise ValueError("export section is malformed")
                f.seek(start + length)
    except (EOFError, IndexError):
        raise RunwasmError(f"module {shown} is truncated or corrupt") from None
    except ValueError as e:
        raise RunwasmError(f"module {shown} is corrupt: {e}") from None
    except OSError as e:
        raise RunwasmError(f"module {shown}: {e.strerror}") from None
    return found

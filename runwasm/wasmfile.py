"""What a file is, from its first bytes, and a structural check of a core module.

Stdlib only: the handler runs this at `create` for every Wasm container, before any
engine is loaded, so a corrupt or truncated module fails `create` cleanly.
"""

from __future__ import annotations

from runwasm.errors import RunwasmError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Final

MAGIC: Final = b"\0asm"
CORE_VERSION: Final = b"\x01\x00\x00\x00"
COMPONENT_VERSION: Final = b"\x0d\x00\x01\x00"  # version 0x0d, layer 1
_CUSTOM_SECTION: Final = 0
_EXPORT_SECTION: Final = 7
_LAST_SECTION: Final = 13  # tag section (exception handling)
_FUNC_EXPORT: Final = 0

# Kinds returned by sniff().
MODULE, COMPONENT, WAT, ELF, SCRIPT, UNKNOWN = (
    "module", "component", "wat", "elf", "script", "unknown"
)
PRECOMPILED: Final = "precompiled"  # a Wasmtime artifact (.cwasm): ELF with engine code
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
    with open(path, "rb") as f:
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
    result = shift = 0
    for _ in range(5):
        byte = f.read(1)
        if not byte:
            raise EOFError
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
    raise ValueError("LEB128 integer too long")


def function_exports(path: str, name: str = "") -> set[str]:
    """Walk a core module's sections; its exported function names.

    Raises RunwasmError naming the file (as `name`, e.g. its path in the image) when
    the sections do not tile it exactly (truncated, padded or corrupt).
    """
    exports: set[str] = set()
    shown = name or path
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            header = f.read(8)
            if header[:4] != MAGIC or header[4:8] != CORE_VERSION:
                raise ValueError("not a WebAssembly core module (bad header)")
            while f.tell() < size:
                section = f.read(1)[0]
                length = _leb_u32(f)
                start = f.tell()
                if start + length > size:
                    raise ValueError(f"section {section} runs past the end of the file")
                if section > _LAST_SECTION:
                    raise ValueError(f"unknown section id {section}")
                if section == _CUSTOM_SECTION and (length == 0 or _leb_u32(f) > length - 1):
                    raise ValueError("custom section without a valid name")
                if section == _EXPORT_SECTION:
                    for _ in range(_leb_u32(f)):
                        export = f.read(_leb_u32(f)).decode("utf-8", "replace")
                        kind = f.read(1)
                        _leb_u32(f)
                        if kind and kind[0] == _FUNC_EXPORT:
                            exports.add(export)
                    if f.tell() != start + length:
                        raise ValueError("export section is malformed")
                f.seek(start + length)
    except (EOFError, IndexError):
        raise RunwasmError(f"module {shown} is truncated or corrupt") from None
    except ValueError as e:
        raise RunwasmError(f"module {shown} is corrupt: {e}") from None
    except OSError as e:
        raise RunwasmError(f"module {shown}: {e.strerror}") from None
    return exports

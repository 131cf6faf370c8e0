"""The part of ctypes the Wasmtime binding uses, on the C module `_ctypes` alone.

`import ctypes` costs every Wasm container about 1.3 ms on a small node: it defines all
of C's types, loads `struct` and `types`, checks type sizes and makes a callback at
import. The binding (wasmtime_capi) needs eight scalar types, structures, unions,
pointers, arrays, a loaded library and plain C calls, all of which `_ctypes` implements;
the classes here are defined exactly as ctypes defines its own (the same type codes on
every LP64 Linux), so values convert the same way. tests/unit/test_ctypes_lean.py holds
them to ctypes' sizes and conversions.
"""

from __future__ import annotations

import sys
from _ctypes import (  # type: ignore[attr-defined,unused-ignore]
    FUNCFLAG_CDECL,
    POINTER,
    RTLD_LOCAL,
    CFuncPtr,
    Structure,
    Union,
    _SimpleCData,
    byref,
    dlopen,
    sizeof,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["POINTER", "Structure", "Union", "byref", "sizeof", "c_bool", "c_char",
           "c_char_p", "c_int", "c_int32", "c_int64", "c_size_t", "c_uint8", "c_uint64",
           "c_void_p", "Library", "string_at"]

if sys.maxsize != 2**63 - 1:  # pragma: no cover - runwasm's nodes are 64-bit Linux
    raise ImportError("ctypes_lean: only LP64 platforms")


# Each a direct subclass of _SimpleCData, as in ctypes: a function returning one gives a
# plain Python value (int, bool, bytes or None), not the ctypes object.
class c_bool(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "?"


class c_char(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "c"


class c_char_p(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "z"


class c_int(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "i"


class c_int64(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "l"  # long: 64 bits on LP64, as ctypes.c_int64 there


class c_uint8(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "B"


class c_uint64(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "L"  # unsigned long, as ctypes.c_uint64 and ctypes.c_size_t on LP64


class c_void_p(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "P"


c_int32 = c_int
c_size_t = c_uint64


class _CFunction(CFuncPtr):
    # cdecl, the GIL released during the call (ctypes.CDLL's functions).
    _flags_ = FUNCFLAG_CDECL
    _restype_ = c_int


class Library:
    """A shared library loaded as ctypes.CDLL loads it (RTLD_NOW | RTLD_LOCAL)."""

    def __init__(self, path: str) -> None:
        self._name = path
        self._handle = dlopen(path, RTLD_LOCAL)  # _ctypes adds RTLD_NOW

    def function(self, name: str) -> Any:
        """The C function `name` (AttributeError if the library has none), ready for
        restype and argtypes."""
        return _CFunction((name, self))  # type: ignore[arg-type]


def string_at(address: Any, size: int) -> bytes:
    """`size` bytes at `address` (an int or a pointer object), as ctypes.string_at."""
    if size <= 0:
        return b""
    if not isinstance(address, int):  # a pointer: the address it holds
        address = c_void_p.from_buffer_copy(address).value
    return (c_char * size).from_address(address).raw  # type: ignore[misc]

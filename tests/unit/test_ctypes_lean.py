"""ctypes_lean against ctypes: the same sizes, type codes and conversions, and a launcher
binding that never imports ctypes."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

from runwasm.engines import ctypes_lean as lean

REPO = Path(__file__).resolve().parents[2]
LIBC = ctypes.util.find_library("c") or "libc.so.6"


@pytest.mark.parametrize(("ours", "theirs"), [
    (lean.c_bool, ctypes.c_bool), (lean.c_char, ctypes.c_char),
    (lean.c_char_p, ctypes.c_char_p), (lean.c_int, ctypes.c_int),
    (lean.c_int32, ctypes.c_int32), (lean.c_int64, ctypes.c_int64),
    (lean.c_size_t, ctypes.c_size_t), (lean.c_uint8, ctypes.c_uint8),
    (lean.c_uint64, ctypes.c_uint64), (lean.c_void_p, ctypes.c_void_p),
])
def test_scalar_types_are_ctypes_own(ours: type, theirs: type) -> None:
    assert ours._type_ == theirs._type_  # type: ignore[attr-defined]
    assert lean.sizeof(ours) == ctypes.sizeof(theirs)
    assert ctypes.alignment(ours) == ctypes.alignment(theirs)


def test_values_convert_as_in_ctypes() -> None:
    assert lean.c_int64(-(2**63)).value == -(2**63)
    assert lean.c_uint64(2**64 - 1).value == 2**64 - 1
    assert lean.c_uint8(255).value == 255
    assert lean.c_bool(True).value is True
    assert lean.c_char_p(b"abc").value == b"abc"
    assert lean.c_void_p(None).value is None


def test_calls_convert_arguments_and_results() -> None:
    libc = lean.Library(LIBC)
    strlen = libc.function("strlen")
    strlen.restype, strlen.argtypes = lean.c_size_t, (lean.c_char_p,)
    assert strlen(b"hello") == 5
    assert isinstance(strlen(b""), int)  # a plain int, not a c_size_t
    getenv = libc.function("getenv")
    getenv.restype, getenv.argtypes = lean.c_void_p, (lean.c_char_p,)
    assert getenv(b"RUNWASM_NO_SUCH_VARIABLE") is None  # NULL comes back as None


def test_a_missing_function_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        lean.Library(LIBC).function("runwasm_no_such_function")


def test_a_missing_library_is_an_os_error() -> None:
    with pytest.raises(OSError):
        lean.Library("/nonexistent/libnothing.so")


def test_structures_pointers_and_string_at() -> None:
    class Vec(lean.Structure):
        _fields_ = [("size", lean.c_size_t), ("data", lean.POINTER(lean.c_char))]

    class Theirs(ctypes.Structure):
        _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.POINTER(ctypes.c_char))]

    assert lean.sizeof(Vec) == ctypes.sizeof(Theirs)
    buffer = (lean.c_char * 6)(*b"bytes\0")
    vec = Vec(5, lean.POINTER(lean.c_char)(buffer))
    assert lean.string_at(vec.data, vec.size) == b"bytes"  # from a pointer object
    assert lean.string_at(ctypes.addressof(buffer), 3) == b"byt"  # from an address
    assert lean.string_at(0, 0) == b""


def test_the_launcher_binding_does_not_import_ctypes() -> None:
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = ("import sys; sys.path.extend(sys.argv[1:]);"
            "from runwasm.engines import wasmtime_capi; assert wasmtime_capi.load();"
            "print('ctypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(REPO), *site],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

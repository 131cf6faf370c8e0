"""A lean binding of the few Wasmtime C API functions the launcher needs.

`import wasmtime` costs a container about 20 ms and 6 MiB (typing, and ctypes prototypes
for the whole C API). The launcher runs one command module, usually from runwasm's
precompiled cache, so this module binds only those calls (through ctypes_lean, not all
of ctypes) against the very `_libwasmtime.so` the `wasmtime` package ships: the package
stays the dependency, and the guest meets the same engine. It mirrors the part of the
package's API that `wasmtime_inproc` uses (Config, Engine, Module, Store, WasiConfig,
Linker, Instance exports, Func, Memory, WasmtimeError/ExitTrap/Trap), so the adapter's
code runs on either, and tests/unit/test_wasmtime_capi.py holds the two to the same
behaviour.

What it does not cover (components, text modules, an untested package version) runs on
the full package: see `load()`. Objects are never freed: the launcher
runs one guest and ends with posix._exit. Like the launcher, this module does without
`os` (launcher/main.py says why).
"""

from __future__ import annotations

import _stat
import posix
import sys

from runwasm.engines.base import dist_version
from runwasm.engines.ctypes_lean import (
    POINTER,
    Library,
    Structure,
    Union,
    byref,
    c_bool,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint64,
    c_void_p,
    string_at,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Final

# The package versions whose C API matches the prototypes below (the test compares them
# with the package's own); another version falls back to the full package.
TESTED_MAJORS: Final = (50,)

_EXTERN_FUNC: Final = 0
_EXTERN_MEMORY: Final = 3
_I32: Final = 0  # wasm_valkind_t and wasmtime_valkind_t alike
_I64: Final = 1


class TrapCode:
    """The trap codes the launcher looks at (wasmtime_trap_code_t)."""

    INTERRUPT: Final = 10
    OUT_OF_FUEL: Final = 11


class WasmtimeError(Exception):
    pass


class ExitTrap(WasmtimeError):
    """The guest called WASI proc_exit."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Trap(WasmtimeError):
    def __init__(self, message: str, trap_code: int | None) -> None:
        super().__init__(message)
        self.trap_code = trap_code


# -- the C side ------------------------------------------------------------------------


class _ByteVec(Structure):  # wasm_byte_vec_t
    _fields_ = [("size", c_size_t), ("data", POINTER(c_char))]


class _Func(Structure):  # wasmtime_func_t
    _fields_ = [("store_id", c_uint64), ("private", c_void_p)]


class _ExternOf(Union):  # wasmtime_extern_union_t: func, memory, ... (24 bytes)
    _fields_ = [("func", _Func), ("raw", c_uint64 * 3)]


class _Extern(Structure):  # wasmtime_extern_t
    _fields_ = [("kind", c_uint8), ("of", _ExternOf)]


class _ValtypeVec(Structure):  # wasm_valtype_vec_t
    _fields_ = [("size", c_size_t), ("data", POINTER(c_void_p))]


class _ValUnion(Union):  # wasmtime_valunion_t: numbers, v128, references (24 bytes)
    _fields_ = [("i32", c_int32), ("i64", c_int64), ("raw", c_uint64 * 3)]


class _Val(Structure):  # wasmtime_val_t
    _fields_ = [("kind", c_uint8), ("of", _ValUnion)]


class _Instance(Structure):  # wasmtime_instance_t
    _fields_ = [("store_id", c_uint64), ("private", c_size_t)]


_P = c_void_p  # every pointer: opaque handles, out-parameters and strings alike
# name -> (restype, argtypes), exactly as in wasmtime's C headers.
PROTOTYPES: Final = {
    "wasm_config_new": (_P, ()),
    "wasmtime_config_epoch_interruption_set": (None, (_P, c_bool)),
    "wasmtime_config_consume_fuel_set": (None, (_P, c_bool)),
    "wasm_engine_new_with_config": (_P, (_P,)),
    "wasmtime_engine_increment_epoch": (None, (_P,)),
    "wasmtime_module_new": (_P, (_P, _P, c_size_t, _P)),
    "wasmtime_module_deserialize_file": (_P, (_P, c_char_p, _P)),
    "wasmtime_store_new": (_P, (_P, _P, _P)),
    "wasmtime_store_context": (_P, (_P,)),
    "wasmtime_store_limiter": (None, (_P, c_int64, c_int64, c_int64, c_int64, c_int64)),
    "wasmtime_context_set_wasi": (_P, (_P, _P)),
    "wasmtime_context_set_epoch_deadline": (None, (_P, c_uint64)),
    "wasmtime_context_set_fuel": (_P, (_P, c_uint64)),
    "wasi_config_new": (_P, ()),
    "wasi_config_set_argv": (c_bool, (_P, c_size_t, _P)),
    "wasi_config_set_env": (c_bool, (_P, c_size_t, _P, _P)),
    "wasi_config_inherit_stdin": (None, (_P,)),
    "wasi_config_inherit_stdout": (None, (_P,)),
    "wasi_config_inherit_stderr": (None, (_P,)),
    "wasi_config_preopen_dir": (c_bool, (_P, c_char_p, c_char_p, c_bool)),
    "wasmtime_linker_new": (_P, (_P,)),
    "wasmtime_linker_define_wasi": (_P, (_P,)),
    "wasmtime_linker_instantiate": (_P, (_P, _P, _P, _P, _P)),
    "wasmtime_instance_export_get": (c_bool, (_P, _P, c_char_p, c_size_t, _P)),
    "wasmtime_func_call": (_P, (_P, _P, _P, c_size_t, _P, c_size_t, _P)),
    "wasmtime_func_type": (_P, (_P, _P)),
    "wasm_functype_params": (POINTER(_ValtypeVec), (_P,)),
    "wasm_functype_results": (POINTER(_ValtypeVec), (_P,)),
    "wasm_valtype_kind": (c_uint8, (_P,)),
    "wasm_functype_delete": (None, (_P,)),
    "wasmtime_linker_define_unknown_imports_as_traps": (_P, (_P, _P)),
    "wasmtime_memory_data_size": (c_size_t, (_P, _P)),
    "wasmtime_error_exit_status": (c_bool, (_P, _P)),
    "wasmtime_error_message": (None, (_P, _P)),
    "wasmtime_error_delete": (None, (_P,)),
    "wasm_trap_message": (None, (_P, _P)),
    "wasmtime_trap_code": (c_bool, (_P, _P)),
    "wasm_trap_delete": (None, (_P,)),
    "wasm_byte_vec_delete": (None, (_P,)),
}


class _Library:
    """The prototyped functions of one loaded libwasmtime, as attributes."""

    def __init__(self, path: str) -> None:
        dll = Library(path)  # calls release the GIL: the signal thread runs
        for name, (restype, argtypes) in PROTOTYPES.items():
            function = dll.function(name)
            function.restype = restype
            function.argtypes = argtypes
            setattr(self, name, function)

    def __getattr__(self, name: str) -> Any:  # for mypy: set in __init__
        raise AttributeError(name)


_lib: _Library | None = None


def library(paths: Iterable[str] | None = None) -> str | None:
    """The package's libwasmtime on the import path, if its version is one of
    TESTED_MAJORS; None otherwise."""
    from runwasm.engines.wasmtime_inproc import native_library

    for site in sys.path if paths is None else paths:
        path = native_library(site)
        if _is_file(path):
            major = dist_version(site, "wasmtime").partition(".")[0]
            return path if major.isdigit() and int(major) in TESTED_MAJORS else None
    return None


def load(paths: Iterable[str] | None = None) -> bool:
    """Load the library once; False when the full package must be used instead."""
    global _lib
    if _lib is None:
        path = library(paths)
        if path is None:
            return False
        _lib = _Library(path)
    return True


def _is_file(path: str) -> bool:
    try:
        return _stat.S_ISREG(posix.stat(path).st_mode)
    except OSError:
        return False


def _fsencode(path: str) -> bytes:
    """os.fsencode."""
    return path.encode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def _api() -> _Library:
    if _lib is None:
        raise WasmtimeError("wasmtime_capi: library not loaded")
    return _lib


def _take_message(getter: Any, pointer: int, strip_nul: bool) -> str:
    vec = _ByteVec()
    getter(pointer, byref(vec))
    size = vec.size - 1 if strip_nul and vec.size else vec.size
    text = string_at(vec.data, size).decode("utf-8", "replace")
    _api().wasm_byte_vec_delete(byref(vec))
    return text


def _error(pointer: int) -> WasmtimeError:
    """A WasmtimeError (ExitTrap for proc_exit) from an owned wasmtime_error_t."""
    lib = _api()
    status = c_int(0)
    message = _take_message(lib.wasmtime_error_message, pointer, False)
    if lib.wasmtime_error_exit_status(pointer, byref(status)):
        error: WasmtimeError = ExitTrap(status.value, message)
    else:
        error = WasmtimeError(message)
    lib.wasmtime_error_delete(pointer)
    return error


def _trap(pointer: int) -> Trap:
    lib = _api()
    code = c_uint8(0)
    trap_code = code.value if lib.wasmtime_trap_code(pointer, byref(code)) else None
    trap = Trap(_take_message(lib.wasm_trap_message, pointer, True), trap_code)
    lib.wasm_trap_delete(pointer)
    return trap


def _check(error: int | None) -> None:
    if error:
        raise _error(error)


def _strings(values: list[str]) -> Any:
    # Bytes that are not UTF-8 reach Python as surrogates; they go back as they came.
    return (c_char_p * len(values))(*(v.encode("utf-8", "surrogateescape") for v in values))


# -- the package's API, the part the adapter uses --------------------------------------


class Config:
    def __init__(self) -> None:
        self._ptr: int | None = _api().wasm_config_new()
        self._epoch = False
        self._fuel = False

    @property
    def epoch_interruption(self) -> bool:
        return self._epoch

    @epoch_interruption.setter
    def epoch_interruption(self, enable: bool) -> None:
        self._epoch = enable
        _api().wasmtime_config_epoch_interruption_set(self._ptr, enable)

    @property
    def consume_fuel(self) -> bool:
        return self._fuel

    @consume_fuel.setter
    def consume_fuel(self, enable: bool) -> None:
        self._fuel = enable
        _api().wasmtime_config_consume_fuel_set(self._ptr, enable)


class Engine:
    def __init__(self, config: Config) -> None:
        if config._ptr is None:
            raise WasmtimeError("config already used")
        pointer, config._ptr = config._ptr, None  # the engine takes ownership
        self._ptr: int | None = _api().wasm_engine_new_with_config(pointer)
        if not self._ptr:
            raise WasmtimeError("failed to create an engine from this configuration")

    def increment_epoch(self) -> None:
        """Thread-safe: the signal thread calls it while the guest runs."""
        _api().wasmtime_engine_increment_epoch(self._ptr)


class Module:
    def __init__(self, pointer: int) -> None:
        self._ptr = pointer

    @classmethod
    def deserialize_file(cls, engine: Engine, path: str) -> Module:
        """A precompiled artifact, memory-mapped (containers share its code pages)."""
        out = c_void_p()
        _check(_api().wasmtime_module_deserialize_file(engine._ptr, _fsencode(path),
                                                       byref(out)))
        return cls(out.value or 0)

    @classmethod
    def from_file(cls, engine: Engine, path: str) -> Module:
        """Compile a binary module (text modules go through the package)."""
        with open(path, "rb") as f:
            data = f.read()
        out = c_void_p()
        _check(_api().wasmtime_module_new(engine._ptr, data, len(data), byref(out)))
        return cls(out.value or 0)


class WasiConfig:
    def __init__(self) -> None:
        self._ptr: int | None = _api().wasi_config_new()

    def _set_argv(self, argv: list[str]) -> None:
        if not _api().wasi_config_set_argv(self._ptr, len(argv), _strings(argv)):
            raise WasmtimeError("failed to configure argv")

    def _set_env(self, pairs: list[tuple[str, str]]) -> None:
        names, values = _strings([k for k, _ in pairs]), _strings([v for _, v in pairs])
        if not _api().wasi_config_set_env(self._ptr, len(pairs), names, values):
            raise WasmtimeError("failed to configure environment")

    argv = property(None, _set_argv)
    env = property(None, _set_env)

    def inherit_stdin(self) -> None:
        _api().wasi_config_inherit_stdin(self._ptr)

    def inherit_stdout(self) -> None:
        _api().wasi_config_inherit_stdout(self._ptr)

    def inherit_stderr(self) -> None:
        _api().wasi_config_inherit_stderr(self._ptr)

    def preopen_dir(self, path: str, guest_path: str, fs_mutable: bool = True) -> None:
        if not _api().wasi_config_preopen_dir(self._ptr, _fsencode(path),
                                              guest_path.encode(), fs_mutable):
            raise WasmtimeError("failed to add preopen dir")


class Store:
    def __init__(self, engine: Engine) -> None:
        lib = _api()
        self._ptr = lib.wasmtime_store_new(engine._ptr, None, None)
        self._context: int = lib.wasmtime_store_context(self._ptr)

    def set_wasi(self, wasi: WasiConfig) -> None:
        if wasi._ptr is None:
            raise WasmtimeError("WASI config already used")
        pointer, wasi._ptr = wasi._ptr, None  # the store takes ownership
        _check(_api().wasmtime_context_set_wasi(self._context, pointer))

    def set_epoch_deadline(self, ticks_after_current: int) -> None:
        _api().wasmtime_context_set_epoch_deadline(self._context, ticks_after_current)

    def set_limits(self, memory_size: int = -1, table_elements: int = -1, instances: int = -1,
                   tables: int = -1, memories: int = -1) -> None:
        _api().wasmtime_store_limiter(self._ptr, memory_size, table_elements, instances,
                                      tables, memories)

    def set_fuel(self, fuel: int) -> None:
        _check(_api().wasmtime_context_set_fuel(self._context, fuel))


class Func:
    def __init__(self, extern: _Extern) -> None:
        self._extern = extern

    def __call__(self, store: Store) -> int | list[object] | None:
        """Call a function without parameters, as the package does: None for no result,
        an i32 or i64 result as an int, anything else as a list (no value the launcher
        reads)."""
        lib = _api()
        func = byref(self._extern.of.func)
        functype = lib.wasmtime_func_type(store._context, func)
        params = lib.wasm_functype_params(functype).contents.size
        results = lib.wasm_functype_results(functype).contents
        kinds = [lib.wasm_valtype_kind(results.data[i]) for i in range(results.size)]
        lib.wasm_functype_delete(functype)
        if params:
            raise WasmtimeError(f"too few parameters provided: given 0, expected {params}")
        values = (_Val * len(kinds))()
        trap = c_void_p()
        _check(lib.wasmtime_func_call(store._context, func, None, 0, values, len(kinds),
                                      byref(trap)))
        if trap.value:
            raise _trap(trap.value)
        if not kinds:
            return None
        if kinds == [_I32]:
            return int(values[0].of.i32)
        if kinds == [_I64]:
            return int(values[0].of.i64)
        return [None] * len(kinds)


class Memory:
    def __init__(self, extern: _Extern) -> None:
        self._extern = extern

    def data_len(self, store: Store) -> int:
        return int(_api().wasmtime_memory_data_size(store._context, byref(self._extern.of)))


class Extern:
    """An export of another kind (global, table, ...): the launcher uses none."""


class _Exports:
    def __init__(self, store: Store, instance: _Instance) -> None:
        self._store = store
        self._instance = instance

    def get(self, name: str) -> Func | Memory | Extern | None:
        extern = _Extern()
        key = name.encode()
        if not _api().wasmtime_instance_export_get(self._store._context, byref(self._instance),
                                                   key, len(key), byref(extern)):
            return None
        if extern.kind == _EXTERN_FUNC:
            return Func(extern)
        if extern.kind == _EXTERN_MEMORY:
            return Memory(extern)
        return Extern()


class Instance:
    def __init__(self, instance: _Instance) -> None:
        self._instance = instance

    def exports(self, store: Store) -> _Exports:
        return _Exports(store, self._instance)


class Linker:
    def __init__(self, engine: Engine) -> None:
        self._ptr = _api().wasmtime_linker_new(engine._ptr)

    def define_wasi(self) -> None:
        _check(_api().wasmtime_linker_define_wasi(self._ptr))

    def define_unknown_imports_as_traps(self, module: Module) -> None:
        _check(_api().wasmtime_linker_define_unknown_imports_as_traps(self._ptr, module._ptr))

    def instantiate(self, store: Store, module: Module) -> Instance:
        instance = _Instance()
        trap = c_void_p()
        _check(_api().wasmtime_linker_instantiate(self._ptr, store._context, module._ptr,
                                                  byref(instance), byref(trap)))
        if trap.value:
            raise _trap(trap.value)
        return Instance(instance)

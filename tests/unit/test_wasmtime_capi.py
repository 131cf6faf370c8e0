"""runwasm.engines.wasmtime_capi: the lean binding, held to the wasmtime package.

Its prototypes and structures are compared with the package's own, and every guest
below runs through the adapter twice, once on the package and once on the binding, with
the same exit code, output and messages expected from both.
"""

from __future__ import annotations

import ctypes
import threading
import time
from pathlib import Path

import pytest
import wasmtime
import wasmtime._bindings as package_ffi

from runwasm.engines import wasmtime_capi, wasmtime_inproc
from runwasm.engines.base import EXIT_FUEL, EXIT_MEMORY, EXIT_TRAP, EngineError
from runwasm.plan import Limits, Plan

BINDINGS = ["package", "capi"]

# fd_write "hello\n" to stdout, then return from _start.
HELLO = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 6))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""

# proc_exit(argc * 10 + number of environment variables): argv and env reach the guest.
COUNTS = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $args (i32.const 0) (i32.const 4)))
    (drop (call $env (i32.const 8) (i32.const 12)))
    (call $exit (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 10))
                         (i32.load (i32.const 8))))))"""

TRAP = '(module (func (export "_start") unreachable))'
SPIN = '(module (func (export "_start") (loop $l (br $l))))'
NO_START = '(module (func (export "main")))'
# Grow memory until memory.grow fails, then trap (as an allocator that aborts would).
GROW = """(module (memory (export "memory") 1)
  (func (export "_start")
    (block $done (loop $l
      (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $l)))
    unreachable))"""
# A reactor: _initialize sets a global the exports return; an import of its own embedder
# (trapping if called), and exports of every result shape.
REACTOR = """(module
  (import "host" "missing" (func $missing))
  (global $g (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $g (i32.const 300)))
  (func (export "i32") (result i32) (global.get $g))
  (func (export "i64") (result i64) (i64.const 7))
  (func (export "f64") (result f64) (f64.const 1.5))
  (func (export "pair") (result i32 i32) (i32.const 5) (i32.const 6))
  (func (export "none"))
  (func (export "takes") (param i32))
  (func (export "calls_missing") (call $missing)))"""
# Fail at instantiation: the start function traps.
START_TRAP = '(module (func $s unreachable) (start $s) (func (export "_start")))'


def _binding(name: str) -> object:
    if name == "package":
        return wasmtime
    assert wasmtime_capi.load(), "the installed wasmtime package is not one the binding knows"
    return wasmtime_capi


@pytest.fixture
def app_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A host directory standing in for the container's /.app."""
    root = tmp_path / "app"
    root.mkdir()
    monkeypatch.setattr(wasmtime_inproc, "APP_ROOT", str(root))
    return root


def _plan(module: Path, root: Path, *, args: list[str] | None = None,
          limits: Limits | None = None, artifact: str = "", kind: str = "module",
          invoke: str = "") -> Plan:
    return Plan(engine="wasmtime", module=str(module), kind=kind, args=args or ["/m.wasm"],
                cwd=str(root), readonly=False, limits=limits, artifact=artifact,
                invoke=invoke)


def _module(root: Path, wat: str, name: str = "m.wasm") -> Path:
    path = root / name
    path.write_bytes(bytes(wasmtime.wat2wasm(wat)))
    return path


def _run(binding: str, plan: Plan, env: list[tuple[str, str]] | None = None) -> int:
    return wasmtime_inproc.WasmtimeInProcess().run_on(_binding(binding), plan, env or [])


# -- the binding's C declarations against the package's ---------------------------------


def _shape(ctype: object) -> tuple[str, int]:
    """What matters for the ABI: pointer or value (by its type code: the binding's
    types are ctypes_lean's, the package's are ctypes'), and the size."""
    if ctype is None:
        return ("void", 0)
    assert isinstance(ctype, type)
    code = getattr(ctype, "_type_", None)
    pointer = issubclass(ctype, (ctypes._Pointer, ctypes._CFuncPtr)) or code in ("P", "z")
    return ("pointer" if pointer else str(code), ctypes.sizeof(ctype))


@pytest.mark.parametrize("name", sorted(wasmtime_capi.PROTOTYPES))
def test_prototype_matches_the_package(name: str) -> None:
    restype, argtypes = wasmtime_capi.PROTOTYPES[name]
    theirs = getattr(package_ffi, "_" + name)
    assert _shape(restype) == _shape(theirs.restype)
    assert [_shape(a) for a in argtypes] == [_shape(a) for a in theirs.argtypes]


@pytest.mark.parametrize(("ours", "theirs"), [
    (wasmtime_capi._Extern, package_ffi.wasmtime_extern_t),
    (wasmtime_capi._ExternOf, package_ffi.wasmtime_extern_union_t),
    (wasmtime_capi._Func, package_ffi.wasmtime_func_t),
    (wasmtime_capi._Instance, package_ffi.wasmtime_instance_t),
    (wasmtime_capi._ByteVec, package_ffi.wasm_byte_vec_t),
    (wasmtime_capi._ValtypeVec, package_ffi.wasm_valtype_vec_t),
    (wasmtime_capi._Val, package_ffi.wasmtime_val_t),
    (wasmtime_capi._ValUnion, package_ffi.wasmtime_valunion_t),
])
def test_structure_layout_matches_the_package(ours: type, theirs: type) -> None:
    assert ctypes.sizeof(ours) == ctypes.sizeof(theirs)
    assert ctypes.alignment(ours) == ctypes.alignment(theirs)
    if hasattr(theirs, "of"):
        assert ours.of.offset == theirs.of.offset  # type: ignore[attr-defined]


def test_trap_codes_match_the_package() -> None:
    assert wasmtime_capi.TrapCode.OUT_OF_FUEL == wasmtime.TrapCode.OUT_OF_FUEL.value
    assert wasmtime_capi.TrapCode.INTERRUPT == wasmtime.TrapCode.INTERRUPT.value


def test_kinds_match_the_package() -> None:
    from wasmtime import _ffi

    assert wasmtime_capi._EXTERN_FUNC == _ffi.WASMTIME_EXTERN_FUNC.value
    assert wasmtime_capi._EXTERN_MEMORY == _ffi.WASMTIME_EXTERN_MEMORY.value
    assert wasmtime_capi._I32 == _ffi.WASM_I32.value == _ffi.WASMTIME_I32.value
    assert wasmtime_capi._I64 == _ffi.WASM_I64.value == _ffi.WASMTIME_I64.value


def test_library_is_the_packages_own() -> None:
    found = wasmtime_capi.library()
    assert found is not None
    assert Path(found).parent.parent == Path(wasmtime.__file__).parent


def test_untested_version_falls_back(tmp_path: Path) -> None:
    site = tmp_path / "site"
    lib = Path(wasmtime_capi.library() or "")
    (site / "wasmtime" / lib.parent.name).mkdir(parents=True)
    (site / "wasmtime" / lib.parent.name / lib.name).write_bytes(b"")
    (site / "wasmtime-1.0.0.dist-info").mkdir()
    assert wasmtime_capi.library([str(site)]) is None
    assert wasmtime_capi.library([str(tmp_path / "nothing")]) is None


def test_binding_choice(app_root: Path) -> None:
    module = _module(app_root, HELLO)
    assert wasmtime_inproc.binding(_plan(module, app_root)) is wasmtime_capi
    assert wasmtime_inproc.binding(_plan(module, app_root, kind="wat")) is wasmtime
    assert wasmtime_inproc.binding(_plan(module, app_root, kind="component")) is wasmtime
    reactor = _plan(module, app_root)
    reactor.invoke = "main"
    assert wasmtime_inproc.binding(reactor) is wasmtime_capi


# -- the same guests, the same results on both -------------------------------------------


@pytest.mark.parametrize("binding", BINDINGS)
def test_hello(binding: str, app_root: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert _run(binding, _plan(_module(app_root, HELLO), app_root)) == 0
    assert capfd.readouterr().out == "hello\n"


@pytest.mark.parametrize("binding", BINDINGS)
def test_argv_and_env_reach_the_guest(binding: str, app_root: Path) -> None:
    plan = _plan(_module(app_root, COUNTS), app_root, args=["/m.wasm", "a", "é"])
    env = [("A", "1"), ("B", ""), ("C", "x=y")]
    assert _run(binding, plan, env) == 33


@pytest.mark.parametrize("binding", BINDINGS)
def test_trap(binding: str, app_root: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert _run(binding, _plan(_module(app_root, TRAP), app_root)) == EXIT_TRAP
    err = capfd.readouterr().err
    assert err.startswith("runwasm: guest trapped: ")
    assert "unreachable" in err


def test_trap_message_is_the_packages(app_root: Path,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    messages = []
    for binding in BINDINGS:
        for wat in (TRAP, START_TRAP, NO_START):
            try:
                _run(binding, _plan(_module(app_root, wat), app_root))
            except EngineError as e:
                print(f"EngineError: {e}")
        messages.append(capfd.readouterr())
    assert messages[0] == messages[1]


@pytest.mark.parametrize("binding", BINDINGS)
def test_no_start(binding: str, app_root: Path) -> None:
    with pytest.raises(EngineError, match="exports no _start function"):
        _run(binding, _plan(_module(app_root, NO_START), app_root))


@pytest.mark.parametrize("binding", BINDINGS)
def test_fuel(binding: str, app_root: Path, capfd: pytest.CaptureFixture[str]) -> None:
    plan = _plan(_module(app_root, SPIN), app_root, limits=Limits(fuel=10_000))
    assert _run(binding, plan) == EXIT_FUEL
    assert "ran out of fuel (runwasm.io/fuel=10000)" in capfd.readouterr().err


@pytest.mark.parametrize("binding", BINDINGS)
def test_memory_limit(binding: str, app_root: Path, capfd: pytest.CaptureFixture[str]) -> None:
    plan = _plan(_module(app_root, GROW), app_root, limits=Limits(max_memory=8 << 20))
    assert _run(binding, plan) == EXIT_MEMORY
    assert "memory limit (runwasm.io/max-memory=8388608 bytes)" in capfd.readouterr().err


@pytest.mark.parametrize("binding", BINDINGS)
def test_interrupt_ends_a_spinning_guest(binding: str, app_root: Path) -> None:
    adapter = wasmtime_inproc.WasmtimeInProcess()
    plan = _plan(_module(app_root, SPIN), app_root)
    timer = threading.Timer(0.2, adapter.interrupt)
    timer.start()
    started = time.monotonic()
    assert adapter.run_on(_binding(binding), plan, []) == EXIT_TRAP
    assert time.monotonic() - started < 1.0
    timer.join()


@pytest.mark.parametrize("binding", BINDINGS)
def test_precompiled_artifact(binding: str, app_root: Path, tmp_path: Path,
                              capfd: pytest.CaptureFixture[str]) -> None:
    adapter = wasmtime_inproc.WasmtimeInProcess()
    module = _module(app_root, HELLO)
    artifact = tmp_path / "m.cwasm"
    adapter.precompile(str(module), str(artifact), adapter.codegen_settings(Limits()),
                       adapter.locate(wasmtime_inproc.EngineSettings()))
    module.write_bytes(b"\0asm\1\0\0\0 not loaded: the artifact is")
    assert _run(binding, _plan(module, app_root, artifact=str(artifact))) == 0
    assert capfd.readouterr().out == "hello\n"


@pytest.mark.parametrize("binding", BINDINGS)
def test_unusable_artifact_compiles(binding: str, app_root: Path, tmp_path: Path,
                                    capfd: pytest.CaptureFixture[str]) -> None:
    artifact = tmp_path / "bad.cwasm"
    artifact.write_bytes(b"\x7fELF not an artifact")
    plan = _plan(_module(app_root, HELLO), app_root, artifact=str(artifact))
    assert _run(binding, plan) == 0
    out, err = capfd.readouterr()
    assert out == "hello\n"
    assert err.startswith("runwasm: cached artifact unusable (")


@pytest.mark.parametrize("binding", BINDINGS)
def test_bad_precompiled_image_artifact(binding: str, app_root: Path, tmp_path: Path) -> None:
    artifact = tmp_path / "bad.cwasm"
    artifact.write_bytes(b"\x7fELF not an artifact")
    plan = _plan(artifact, app_root, artifact=str(artifact), kind="precompiled")
    with pytest.raises(EngineError, match="cannot load precompiled"):
        _run(binding, plan)


@pytest.mark.parametrize("binding", BINDINGS)
def test_invalid_module(binding: str, app_root: Path) -> None:
    path = app_root / "bad.wasm"
    path.write_bytes(b"\0asm\1\0\0\0\xff")
    with pytest.raises(EngineError, match="cannot compile"):
        _run(binding, _plan(path, app_root))


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize(("export", "code"), [
    ("i32", 300 & 0xFF), ("i64", 7), ("f64", 0), ("pair", 0), ("none", 0),
])
def test_reactor_export_results(binding: str, export: str, code: int, app_root: Path) -> None:
    plan = _plan(_module(app_root, REACTOR), app_root, invoke=export)
    assert _run(binding, plan) == code


def test_reactor_failures_are_the_packages(app_root: Path,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    module = _module(app_root, REACTOR)
    seen = []
    for binding in BINDINGS:
        codes = []
        for export in ("takes", "calls_missing"):
            codes.append(_run(binding, _plan(module, app_root, invoke=export)))
        with pytest.raises(EngineError, match="exports no function nothing"):
            _run(binding, _plan(module, app_root, invoke="nothing"))
        seen.append((codes, capfd.readouterr()))
    assert seen[0][0] == [EXIT_TRAP, EXIT_TRAP]
    assert seen[0] == seen[1]


def test_the_launcher_runs_without_os_ctypes_or_the_package(app_root: Path) -> None:
    """The whole default-engine launcher, start to exit, in a fresh interpreter: what it
    imported when it ended (launcher/main.py says why not `os`)."""
    import subprocess
    import sys

    module = _module(app_root, HELLO)
    engine = wasmtime.Engine(wasmtime_inproc._config(wasmtime, {"epoch_interruption": True}))
    artifact = app_root / "m.cwasm"
    artifact.write_bytes(wasmtime.Module.from_file(engine, str(module)).serialize())
    plan = _plan(module, app_root, artifact=str(artifact)).to_json()
    site = [p for p in sys.path if p.endswith("site-packages")]
    boot = ("import sys, posix; sys.path[:0] = sys.argv[2:]\n"
            "import runwasm.engines.wasmtime_inproc as adapter\n"
            f"adapter.APP_ROOT = {str(app_root)!r}  # the container's /.app\n"
            "real = posix._exit\n"
            "def report(code):\n"
            "    seen = [m for m in ('os', 'ctypes', 'wasmtime') if m in sys.modules]\n"
            "    sys.stdout.write(repr(seen) + '\\n'); sys.stdout.flush(); real(code)\n"
            "posix._exit = report\n"
            "sys.argv = sys.argv[:2]\n"
            "from runwasm.launcher.main import main; main()\n")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", boot, plan,
                           str(Path(wasmtime_inproc.__file__).parents[2]), *site],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["hello", "[]"]

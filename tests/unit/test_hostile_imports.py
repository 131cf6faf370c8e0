"""A module importing what its engine does not provide is refused at create, naming the
import; and each engine's declaration (runwasm.engines.imports) matches the engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hostile_support import CONFIG, attempt, error_of, runc_spec, wasm, write_bundle

from runwasm.config import NodeConfig
from runwasm.engines import imports as engine_imports
from runwasm.engines import registry
from runwasm.handler.classify import Decision
from runwasm.wasmfile import read_interface

REPO = Path(__file__).resolve().parents[2]
WASMTIME_CLI = REPO / ".venv" / "bin" / "wasmtime"
WASMER_PYTHON = REPO / ".venv310" / "bin" / "python"
WASMEDGE_KIT = REPO.parent / "shared" / "wasmedge"


def module_importing(*imports: str, start: bool = True) -> bytes:
    """A command module with the given import clauses (WAT)."""
    body = " ".join(imports)
    export = '(func (export "_start"))' if start else '(func (export "run"))'
    return wasm(f'(module {body} (memory (export "memory") 1) {export})')


def func(module: str, name: str, params: str = "") -> str:
    return f'(import "{module}" "{name}" (func {params}))'


@pytest.fixture(scope="module")
def base_spec() -> dict[str, Any]:
    return runc_spec()


def bundle_with(tmp_path: Path, spec: dict[str, Any], module: bytes,
                annotations: dict[str, str] | None = None) -> Path:
    spec = dict(spec)
    spec["annotations"] = {**spec["annotations"], **(annotations or {})}
    return write_bundle(tmp_path, spec, module)


# -- the import section ---------------------------------------------------------------------

def test_read_interface_lists_every_import_kind(tmp_path: Path) -> None:
    data = wasm("""(module
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (import "env" "memory" (memory 1 2))
      (import "env" "table" (table 1 funcref))
      (import "env" "g" (global (mut i32)))
      (import "env" "shared" (memory 1 1 shared))
      (import "env" "f" (func))
      (func (export "_start")))""")
    path = tmp_path / "m.wasm"
    path.write_bytes(data)
    interface = read_interface(str(path))
    assert interface.imports == [
        ("wasi_snapshot_preview1", "fd_write", "function"), ("env", "memory", "memory"),
        ("env", "table", "table"), ("env", "g", "global"), ("env", "shared", "memory"),
        ("env", "f", "function")]
    assert interface.exports == {"_start"}


def test_truncated_import_section_is_corrupt(tmp_path: Path) -> None:
    body = b"\x01" + b"\x03env" + b"\x03foo" + b"\x00"  # one entry, type index missing
    path = tmp_path / "m.wasm"
    path.write_bytes(b"\0asm\x01\x00\x00\x00" + b"\x02" + bytes([len(body)]) + body)
    message = error_of(write_bundle(tmp_path / "b", runc_spec(), path.read_bytes()))
    assert "module /app.wasm is" in message and "corrupt" in message


# -- refused at create ------------------------------------------------------------------------

def test_unknown_function_import_is_refused(tmp_path: Path, base_spec: dict[str, Any]) -> None:
    module = module_importing(func("wasi_snapshot_preview1", "fd_write",
                                   "(param i32 i32 i32 i32) (result i32)"),
                              func("env", "foo"))
    message = error_of(bundle_with(tmp_path, base_spec, module))
    assert message == "/app.wasm imports env.foo, which engine wasmtime does not provide"


def test_unknown_wasi_function_is_refused(tmp_path: Path, base_spec: dict[str, Any]) -> None:
    module = module_importing(func("wasi_snapshot_preview1", "sock_open"))
    assert error_of(bundle_with(tmp_path, base_spec, module)) == (
        "/app.wasm imports wasi_snapshot_preview1.sock_open, which engine wasmtime does not "
        "provide")


def test_memory_import_is_refused(tmp_path: Path, base_spec: dict[str, Any]) -> None:
    module = wasm('(module (import "env" "memory" (memory 1)) (func (export "_start")))')
    assert error_of(bundle_with(tmp_path, base_spec, module)) == (
        "/app.wasm imports env.memory (a memory), which engine wasmtime does not provide")


def test_several_unknown_imports_name_the_first(tmp_path: Path,
                                                base_spec: dict[str, Any]) -> None:
    module = module_importing(*(func("host", f"f{i}") for i in range(50)))
    assert error_of(bundle_with(tmp_path, base_spec, module)) == (
        "/app.wasm imports host.f0 (and 49 more), which engine wasmtime does not provide")


def test_huge_import_name_is_cut(tmp_path: Path, base_spec: dict[str, Any]) -> None:
    module = module_importing(func("env", "x" * 100000), func("\\01\\0a", "y"))
    message = error_of(bundle_with(tmp_path, base_spec, module))
    assert message.startswith("/app.wasm imports env." + "x" * 64 + "... (100000 characters)")
    assert len(message) < 200


def test_wasi_unstable_depends_on_the_engine(tmp_path: Path, base_spec: dict[str, Any]
                                             ) -> None:
    module = module_importing(func("wasi_unstable", "fd_write",
                                   "(param i32 i32 i32 i32) (result i32)"))
    assert error_of(bundle_with(tmp_path / "a", base_spec, module)) == (
        "/app.wasm imports wasi_unstable.fd_write, which engine wasmtime does not provide")
    if not WASMTIME_CLI.exists():
        pytest.skip("no wasmtime CLI in .venv")
    config = NodeConfig(path=CONFIG.path, cache_dir="",
                        engines={"wasmtime-cli": {"path": str(WASMTIME_CLI)}})
    decision = attempt(bundle_with(tmp_path / "b", base_spec, module,
                                   {"runwasm.io/engine": "wasmtime-cli"}), config)
    assert isinstance(decision, Decision) and decision.engine == "wasmtime-cli"


def test_a_reactor_s_unknown_functions_are_linked_as_traps(tmp_path: Path,
                                                          base_spec: dict[str, Any]) -> None:
    module = module_importing(func("host", "callback"), start=False)
    decision = attempt(bundle_with(tmp_path / "a", base_spec, module,
                                   {"runwasm.io/invoke": "run"}))
    assert isinstance(decision, Decision) and decision.wasm
    memory = wasm('(module (import "host" "m" (memory 1)) (func (export "run")))')
    assert error_of(bundle_with(tmp_path / "b", base_spec, memory,
                                {"runwasm.io/invoke": "run"})) == (
        "/app.wasm imports host.m (a memory), which engine wasmtime does not provide")


def test_engine_options_may_provide_other_modules(tmp_path: Path,
                                                  base_spec: dict[str, Any]) -> None:
    if not WASMTIME_CLI.exists():
        pytest.skip("no wasmtime CLI in .venv")
    module = module_importing(func("wasi", "thread-spawn", "(param i32) (result i32)"),
                              func("wasi_snapshot_preview1", "nope"))
    config = NodeConfig(path=CONFIG.path, cache_dir="", engines={
        "wasmtime-cli": {"path": str(WASMTIME_CLI), "options": ["-S", "threads=y"]}})
    # another module may come from the options; a WASI name the engine lacks may not
    assert error_of(bundle_with(tmp_path, base_spec, module,
                                {"runwasm.io/engine": "wasmtime-cli"}), config) == (
        "/app.wasm imports wasi_snapshot_preview1.nope, which engine wasmtime-cli does not "
        "provide")


def test_every_builtin_adapter_declares_its_imports() -> None:
    for name in registry.names():
        adapter = registry.adapter_class(name)
        if name in ("wasmtime", "wasmtime-cli", "wasmer", "wasmedge"):
            assert adapter.imports, name
            assert engine_imports.P1_MODULE in adapter.imports


# -- the declarations match the engines -------------------------------------------------------

# A function type no WASI function has: an engine that has the name refuses it as the
# wrong type, one that does not as an unknown import.
ODD = "(param i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)"


def wasi_types() -> dict[str, str]:
    """Each WASI preview 1 function's type, as WAT, from wasmtime's own linker."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    types = {}
    for name in sorted(engine_imports.WASI_P1):
        extern = linker.get(store, engine_imports.P1_MODULE, name)
        assert isinstance(extern, wasmtime.Func)
        ty = extern.type(store)
        params = " ".join(str(p) for p in ty.params)
        results = " ".join(str(r) for r in ty.results)
        types[name] = (f"(param {params})" if params else "") + (
            f" (result {results})" if results else "")
    return types


def all_wasi_imports(imports: engine_imports.Imports, path: Path) -> Path:
    """One module importing every WASI name `imports` declares, each with its real type."""
    types = wasi_types()
    clauses = [func(module, name, types[name]) for module, names in imports.items()
               if names is not None for name in sorted(names) if name in types]
    path.write_bytes(module_importing(*clauses))
    return path


def undeclared(imports: engine_imports.Imports, tmp_path: Path,
               sample: int = 2) -> list[tuple[str, str, Path]]:
    """Probe modules for names `imports` does not declare: a few of each kind."""
    cases = [("wasi_snapshot_preview1", "not_a_wasi_function"), ("env", "foo")]
    for module in (engine_imports.P1_MODULE, engine_imports.UNSTABLE_MODULE):
        names = imports.get(module, frozenset())
        if names is not None:
            lacking = sorted((engine_imports.WASI_P1 | engine_imports.WASMEDGE_SOCKETS) - names)
            cases += [(module, name) for name in lacking[:sample]]
    return [(module, name, _probe(module, name, tmp_path / f"u{i}.wasm"))
            for i, (module, name) in enumerate(cases)]


def _probe(module: str, name: str, path: Path) -> Path:
    path.write_bytes(wasm(f'(module {func(module, name, ODD)} (func (export "_start")))'))
    return path


def _run(argv: list[str], path: Path) -> tuple[int, str]:
    result = subprocess.run([*argv, str(path)], capture_output=True, text=True, timeout=30,
                            check=False)
    return result.returncode, result.stdout + result.stderr


def _check_cli(argv: list[str], imports: engine_imports.Imports, tmp_path: Path) -> None:
    code, text = _run(argv, all_wasi_imports(imports, tmp_path / "all.wasm"))
    assert code == 0, text[-500:]
    for module, name, path in undeclared(imports, tmp_path):
        code, text = _run(argv, path)
        assert code != 0 and "unknown import" in text, (module, name, text[-300:])


def test_wasmtime_py_declaration() -> None:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    declared = engine_imports.WASMTIME
    for module in (engine_imports.P1_MODULE, engine_imports.UNSTABLE_MODULE):
        for name in sorted(engine_imports.WASI_P1 | engine_imports.WASMEDGE_SOCKETS):
            try:
                linker.get(store, module, name)
                linked = True
            except wasmtime.WasmtimeError:
                linked = False
            assert linked == (not engine_imports.missing(declared, module, name)), (module, name)


def test_wasmtime_cli_declaration(tmp_path: Path) -> None:
    if not WASMTIME_CLI.exists():
        pytest.skip("no wasmtime CLI in .venv")
    _check_cli([str(WASMTIME_CLI), "run"], engine_imports.WASMTIME_CLI, tmp_path)


def test_wasmedge_declaration(tmp_path: Path) -> None:
    found = shutil.which("wasmedge")
    if found is None:
        kits = sorted(WASMEDGE_KIT.glob("wasmedge-*.tar.gz"))
        if not kits:
            pytest.skip(f"no wasmedge on PATH and no kit in {WASMEDGE_KIT}")
        with tarfile.open(kits[-1]) as tar:
            tar.extractall(tmp_path / "kit")
        found = str(next((tmp_path / "kit").glob("*/bin/wasmedge")))
    imports = engine_imports.WASMEDGE
    code, text = _run([found], all_wasi_imports(imports, tmp_path / "all.wasm"))
    assert code == 0, text[-500:]
    for module, name, path in undeclared(imports, tmp_path):
        code, text = _run([found], path)
        assert code != 0 and "unknown import" in text, (module, name, text[-300:])
    for name in sorted(engine_imports.WASMEDGE_SOCKETS):  # declared: only the type is wrong
        code, text = _run([found], _probe(engine_imports.P1_MODULE, name, tmp_path / "s.wasm"))
        assert "incompatible import type" in text, (name, text[-300:])


WASMER_PROBE = """
import json, sys, wasmer
from wasmer import wasi
from wasmer_compiler_cranelift import Compiler
store = wasmer.Store(wasmer.engine.Universal(Compiler))
out = []
for path in json.loads(sys.argv[1]):
    module = wasmer.Module(store, open(path, "rb").read())
    version = wasi.get_version(module, strict=False) or wasi.Version.SNAPSHOT1
    imports = wasi.StateBuilder("x").finalize().generate_import_object(store, version)
    try:
        wasmer.Instance(module, imports)
        out.append("linked")
    except Exception as e:
        out.append(str(e))
print(json.dumps(out))
"""


def test_wasmer_py_declaration(tmp_path: Path) -> None:
    if not WASMER_PYTHON.exists():
        pytest.skip("no .venv310 with the wasmer package")
    declared = engine_imports.WASMER
    cases = [(module, "", True, all_wasi_imports({module: names}, tmp_path / f"{module}.wasm"))
             for module, names in declared.items()]
    cases += [(module, name, False, path) for module, name, path in undeclared(
        declared, tmp_path, sample=20)]
    result = subprocess.run([str(WASMER_PYTHON), "-c", WASMER_PROBE,
                             json.dumps([str(c[3]) for c in cases])],
                            capture_output=True, text=True, timeout=60, check=True)
    verdicts = json.loads(result.stdout)
    wrong = [(module, name, verdict[:200]) for (module, name, linked, _), verdict
             in zip(cases, verdicts) if (verdict == "linked") != linked]
    assert not wrong

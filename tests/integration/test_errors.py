"""Every bad input fails create with one clear line, a log record, and nothing left
behind: no container, no mounts, the bundle exactly as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from integration_support import Runtime, mounts_under, snapshot, wasm_bundle

from devkit import bundles

CASES = {
    "missing module": (
        {}, ["/nope.wasm"], {"module.wasm.image/variant": "compat"},
        "module /nope.wasm not found in the image"),
    "not wasm under compat": (
        {"/app.wasm": "text"}, ["/app.wasm"], {"module.wasm.image/variant": "compat"},
        "/app.wasm is not WebAssembly"),
    "corrupt module": (
        {"/app.wasm": "truncated"}, ["/app.wasm"], {"module.wasm.image/variant": "compat"},
        "module /app.wasm is corrupt: section 11 runs past the end of the file"),
    "reactor module": (
        {"/app.wasm": "reactor"}, ["/app.wasm"], {"module.wasm.image/variant": "compat"},
        "exports no _start function"),
    "unknown engine": (
        {"/app.wasm": "hello"}, ["/app.wasm"], {"runwasm.io/engine": "v8"},
        "invalid annotation runwasm.io/engine='v8'"),
    "engine not available": (
        # (wasmer: setup installs WasmEdge where runwasm finds it unconfigured)
        {"/app.wasm": "hello"}, ["/app.wasm"], {"runwasm.io/engine": "wasmer"},
        "engine wasmer is not installed: wasmer on PATH not found"),
    "invalid variant": (
        {"/app.wasm": "hello"}, ["/app.wasm"], {"module.wasm.image/variant": "yes"},
        "invalid annotation module.wasm.image/variant='yes'"),
    "invalid handler": (
        {"/app.wasm": "hello"}, ["/app.wasm"], {"run.oci.handler": "krun"},
        "invalid annotation run.oci.handler='krun'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_cleanly(runtime: Runtime, modules: dict[str, Path], tmp_path: Path,
                                 case: str) -> None:
    files, args, annotations, message = CASES[case]
    rootfs = tmp_path / "b" / "rootfs"
    rootfs.mkdir(parents=True)
    for path, what in files.items():
        target = rootfs / path.lstrip("/")
        if what == "text":
            target.write_text("just text\n")
        else:
            target.write_bytes(modules[what].read_bytes())
    bundle = wasm_bundle(tmp_path / "b", {}, args, annotations=annotations,
                         readonly=True, mounts=[{"destination": "/data", "type": "bind",
                                                 "source": str(tmp_path), "options": ["rbind"]}])
    before = snapshot(bundle)
    log = tmp_path / "log.json"
    container_id = runtime.new_id()
    result = runtime.runwasm("--log", str(log), "--log-format", "json", "create", "--bundle",
                             str(bundle), container_id)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1 and message in errors[0]["msg"] and errors[0]["time"]
    assert container_id not in runtime.listed()
    assert snapshot(bundle) == before
    assert mounts_under(bundle) == []


def test_missing_delegate(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"])
    config = tmp_path / "config.toml"
    config.write_text('[runtime]\ndelegate = "/nonexistent/runc"\n')
    before = snapshot(bundle)
    log = tmp_path / "log.txt"
    result = runtime.runwasm("--log", str(log), "create", "--bundle", str(bundle),
                             runtime.new_id(), env={**os.environ, "RUNWASM_CONFIG": str(config)})
    assert result.returncode == 1
    assert result.stderr == (f"runwasm: delegate runtime '/nonexistent/runc' "
                             f"(runtime.delegate in {config}) not found or not executable\n")
    assert 'level=error msg="runwasm: delegate runtime' in log.read_text()
    assert snapshot(bundle) == before


def test_no_delegate_on_path(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"])
    before = snapshot(bundle)
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id(),
                             env={"PATH": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr == "runwasm: no delegate runtime found: searched PATH for runc, crun\n"
    assert snapshot(bundle) == before


def test_invalid_node_config_names_the_key(runtime: Runtime, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[wasm]\ndetection = "always"\n')
    result = runtime.runwasm("state", "x", env={**os.environ, "RUNWASM_CONFIG": str(config)})
    assert result.returncode == 1
    assert "wasm.detection" in result.stderr and result.stderr.count("\n") == 1


# -- hostile bundles through the real runwasm and runc ---------------------------------------

WAT_IMPORTS_FOO = """(module (import "env" "foo" (func)) (memory (export "memory") 1)
  (func (export "_start")))"""


def _spec(bundle: Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    return spec


def _write(bundle: Path, spec: dict[str, Any] | bytes) -> None:
    raw = spec if isinstance(spec, bytes) else json.dumps(spec, indent=2).encode()
    (bundle / "config.json").write_bytes(raw)


def _not_json(bundle: Path) -> None:
    _write(bundle, (bundle / "config.json").read_bytes().replace(b'"ociVersion"', b'"oci\\x"'))


def _deep(bundle: Path) -> None:
    _write(bundle, b'{"a": ' + b"[" * 50000 + b"]" * 50000 + b"}")


def _no_rootfs(bundle: Path) -> None:
    spec = _spec(bundle)
    spec["root"]["path"] = "missing-rootfs"
    _write(bundle, spec)


def _entry_dir(bundle: Path) -> None:
    (bundle / "rootfs" / "app.wasm").unlink()
    (bundle / "rootfs" / "app.wasm").mkdir()


def _entry_fifo(bundle: Path) -> None:
    (bundle / "rootfs" / "app.wasm").unlink()
    os.mkfifo(bundle / "rootfs" / "app.wasm")


def _entry_loop(bundle: Path) -> None:
    (bundle / "rootfs" / "app.wasm").unlink()
    (bundle / "rootfs" / "app.wasm").symlink_to("app.wasm")


def _args_string(bundle: Path) -> None:
    spec = _spec(bundle)
    spec["process"]["args"] = "/app.wasm"
    _write(bundle, spec)


def _env_no_equals(bundle: Path) -> None:
    spec = _spec(bundle)
    spec["process"]["env"].append("NOEQUALS")
    _write(bundle, spec)


def _uid_string(bundle: Path) -> None:
    spec = _spec(bundle)
    spec["process"]["user"]["uid"] = "0"
    _write(bundle, spec)


def _huge_annotation(bundle: Path) -> None:
    spec = _spec(bundle)
    spec["annotations"]["runwasm.io/max-memory"] = "9" * (1 << 20)
    _write(bundle, spec)


def _nul_in_mount(bundle: Path) -> None:
    spec = _spec(bundle)
    spec["mounts"][0]["destination"] = "/pr\0oc"
    _write(bundle, spec)


def _case_folded_key(bundle: Path) -> None:
    spec = _spec(bundle)
    spec["Process"] = {"args": ["/bin/sh"]}
    _write(bundle, spec)


HOSTILE: dict[str, tuple[Any, str]] = {
    "config not JSON": (_not_json, "config.json: Invalid \\escape"),
    "config nested deeply": (_deep, "config.json: JSON nested too deeply"),
    "root.path missing": (_no_rootfs, "missing-rootfs: No such file or directory"),
    "entrypoint a directory": (_entry_dir, "/app.wasm is a directory, not a regular file"),
    "entrypoint a FIFO": (_entry_fifo, "/app.wasm is a FIFO, not a regular file"),
    "entrypoint a symlink loop": (_entry_loop, "too many levels of symbolic links"),
    "args a string": (_args_string, "process.args: expected an array, not a string"),
    "env entry without =": (_env_no_equals, "process.env[2] 'NOEQUALS' has no '='"),
    "uid a string": (_uid_string, "process.user.uid: expected an integer, not a string"),
    "huge annotation": (_huge_annotation, "(1048576 characters): expected a quantity"),
    "NUL in a mount": (_nul_in_mount, "mounts[0].destination contains a NUL byte"),
    "case-folded key": (_case_folded_key, "Process: runc would read this key as process"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundle(runtime: Runtime, modules: dict[str, Path], tmp_path: Path,
                        case: str) -> None:
    make, message = HOSTILE[case]
    bundle = wasm_bundle(tmp_path / "b", {"/app.wasm": modules["hello"]}, ["/app.wasm"],
                         readonly=True, mounts=[{"destination": "/data", "type": "bind",
                                                 "source": str(tmp_path),
                                                 "options": ["rbind"]}])
    make(bundle)
    _refused_cleanly(runtime, bundle, message)


def _refused_cleanly(runtime: Runtime, bundle: Path, message: str,
                     container_id: str | None = None) -> str:
    """Create is refused with one runwasm line; no state, mounts or files are left."""
    in_use = container_id is not None
    before = snapshot(bundle)
    container_id = container_id or runtime.new_id()
    result = runtime.runwasm("create", "--bundle", str(bundle), container_id, timeout=30)
    assert result.returncode == 1, result.stderr[-500:]
    assert result.stderr.startswith("runwasm: ") and result.stderr.count("\n") == 1, (
        result.stderr[:500])
    assert len(result.stderr) < 400 + len(str(bundle)) and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr
    if not in_use:
        assert not (runtime.root / container_id).exists()
    assert snapshot(bundle) == before
    assert not (bundle / ".runwasm").exists()
    assert mounts_under(bundle) == []
    return result.stderr


def test_module_importing_what_no_engine_provides(runtime: Runtime, tmp_path: Path) -> None:
    module = bundles.wat_module(WAT_IMPORTS_FOO, tmp_path / "foo.wasm")
    bundle = wasm_bundle(tmp_path / "b", {"/app.wasm": module}, ["/app.wasm"])
    stderr = _refused_cleanly(runtime, bundle, "")
    assert stderr == "runwasm: /app.wasm imports env.foo, which engine wasmtime does not provide\n"


def test_id_in_use_is_refused_before_anything_is_written(
        runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    first = wasm_bundle(tmp_path / "a", {"/app.wasm": modules["hello"]}, ["/app.wasm"])
    container_id = runtime.new_id()
    assert runtime.create(first, container_id).returncode == 0
    second = wasm_bundle(tmp_path / "b", {"/app.wasm": modules["hello"]}, ["/app.wasm"])
    stderr = _refused_cleanly(runtime, second, "", container_id)
    assert stderr == "runwasm: container with given ID already exists\n"
    assert runtime.state(container_id) is not None  # the first one is untouched


# Property: a Wasm bundle whose spec runc's decoder refuses (a value of the wrong JSON type
# anywhere) is refused by runwasm itself, before anything is written; an annotation value
# of any kind or size gives a container or one runwasm line. Through the real runwasm and
# runc, so a bounded number of examples.

def _json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _json_paths(item, (*prefix, index))
    return out


def _json_type(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, bool) else "bool"


OTHER_VALUES = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=10), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
# RUNWASM_TEST_EXAMPLES=300 for a longer search (each example is a real create).
PROPERTY = settings(max_examples=int(os.environ.get("RUNWASM_TEST_EXAMPLES", "10")),
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@PROPERTY
@given(data=st.data())
def test_wrongly_typed_spec_never_reaches_runc(runtime: Runtime, modules: dict[str, Path],
                                               tmp_path_factory: pytest.TempPathFactory,
                                               data: st.DataObject) -> None:
    directory = tmp_path_factory.mktemp("typed")
    bundle = wasm_bundle(directory, {"/app.wasm": modules["hello"]}, ["/app.wasm"])
    spec = _spec(bundle)
    path = data.draw(st.sampled_from(_json_paths(spec)))
    parent: Any = spec
    for part in path[:-1]:
        parent = parent[part]
    old = parent[path[-1]]
    parent[path[-1]] = data.draw(OTHER_VALUES.filter(lambda v: _json_type(v) != _json_type(old)))
    _write(bundle, spec)
    _refused_cleanly(runtime, bundle, "")


GOOD_VALUES = {"runwasm.io/engine": ["wasmtime", "wasm"], "runwasm.io/max-memory": ["64Mi"],
               "runwasm.io/timeout": ["30s", "1.5"], "runwasm.io/fuel": ["100000000"],
               "module.wasm.image/variant": ["compat", "compat-smart"],
               "runwasm.io/sockets": ["false"]}


@PROPERTY
@given(data=st.data())
def test_annotation_values_through_runc(runtime: Runtime, modules: dict[str, Path],
                                        tmp_path_factory: pytest.TempPathFactory,
                                        data: st.DataObject) -> None:
    directory = tmp_path_factory.mktemp("annotations")
    key = data.draw(st.sampled_from(sorted(GOOD_VALUES)))
    value = data.draw(st.one_of(st.sampled_from(GOOD_VALUES[key]), st.text(max_size=30),
                                st.sampled_from(["9" * 100000, "\0", " wasmtime\n"])))
    bundle = wasm_bundle(directory, {"/app.wasm": modules["hello"]}, ["/app.wasm"],
                         annotations={"module.wasm.image/variant": "compat", key: value})
    before = snapshot(bundle)
    container_id = runtime.new_id()
    result = runtime.create(bundle, container_id)
    assert "Traceback" not in result.stderr
    event("created" if result.returncode == 0 else "refused")
    if result.returncode == 0:
        assert runtime.state(container_id) is not None
        return
    assert result.stderr.startswith("runwasm: ") and result.stderr.count("\n") == 1
    assert len(result.stderr) < 400
    after = snapshot(bundle)
    for stream in ("out", "err"):  # runtime.create's own files for the runtime's stdio
        after.pop(f"{container_id}.{stream}")
    assert after == before
    assert not (runtime.root / container_id).exists()
    assert mounts_under(directory) == []

"""Every bad input fails create with one clear line, a log record, and nothing left
behind: no container, no mounts, the bundle exactly as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from integration_support import Runtime, mounts_under, snapshot, wasm_bundle

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

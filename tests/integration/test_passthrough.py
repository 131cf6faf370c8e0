"""Linux containers and every non-create verb reach runc untouched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from integration_support import RUNWASM, Runtime, busybox_bundle, wasm_bundle


def test_busybox_config_byte_identical(runtime: Runtime, tmp_path: Path) -> None:
    bundle = busybox_bundle(tmp_path / "b", ["sh", "-c", "echo linux here; exit 5"])
    before = (bundle / "config.json").read_bytes()
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 5, result.stderr
    assert result.stdout == "linux here\n"
    assert (bundle / "config.json").read_bytes() == before
    assert not (bundle / ".runwasm").exists()


def test_compat_smart_sends_elf_to_runc(runtime: Runtime, tmp_path: Path) -> None:
    bundle = busybox_bundle(tmp_path / "b", ["/bin/echo", "sidecar"],
                            annotations={"module.wasm.image/variant": "compat-smart"})
    before = (bundle / "config.json").read_bytes()
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sidecar\n"
    assert (bundle / "config.json").read_bytes() == before


def test_compat_smart_runs_wasm(runtime: Runtime, modules: dict[str, Path],
                                tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"],
                         annotations={"run.oci.handler": "wasm-smart"})
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello from WebAssembly!")


def test_sandbox_container_untouched(runtime: Runtime, tmp_path: Path) -> None:
    bundle = busybox_bundle(tmp_path / "b", ["/bin/true"], annotations={
        "io.kubernetes.cri-o.ContainerType": "sandbox",
        "module.wasm.image/variant": "compat", "runwasm.io/engine": "wasmtime"})
    before = (bundle / "config.json").read_bytes()
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert (bundle / "config.json").read_bytes() == before


def test_flags_after_the_id_and_root_forms(runtime: Runtime, tmp_path: Path) -> None:
    bundle = busybox_bundle(tmp_path / "b", ["/bin/sleep", "600"])
    container_id = runtime.new_id()
    with open(tmp_path / "out", "w") as out:
        created = subprocess.run(
            [str(RUNWASM), f"--root={runtime.root}", "create", container_id, "--bundle",
             str(bundle), "--pid-file", str(tmp_path / "pid")],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL, check=False)
    assert created.returncode == 0, (tmp_path / "out").read_text()
    state = json.loads(runtime.runwasm("state", container_id).stdout)
    assert state["status"] == "created"
    assert state["pid"] == int((tmp_path / "pid").read_text())
    assert runtime.runwasm("start", container_id).returncode == 0
    assert runtime.runwasm("kill", container_id, "KILL").returncode == 0
    assert runtime.runwasm("delete", "--force", "--", container_id).returncode == 0
    assert container_id not in runtime.listed()


def test_errors_of_passed_through_verbs_are_runcs(runtime: Runtime) -> None:
    result = runtime.runwasm("state", "no-such-container")
    assert result.returncode == 1
    assert "does not exist" in result.stderr or "not exist" in result.stderr


def test_version_and_features() -> None:
    version = subprocess.run([str(RUNWASM), "--version"], capture_output=True, text=True,
                             check=True)
    lines = version.stdout.splitlines()
    assert lines[0].startswith("runwasm version ")
    assert any(line.startswith("runc version") for line in lines[1:])
    features = subprocess.run([str(RUNWASM), "features"], capture_output=True, text=True,
                              check=True)
    data = json.loads(features.stdout)
    assert data["ociVersionMin"] and data["ociVersionMax"]
    assert "runwasm.io/engine" in data["annotations"]
    assert "module.wasm.image/variant" in data["annotations"]

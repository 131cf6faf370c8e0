"""The configuration shipped in configs/: it parses, follows CRI-O's and containerd's
rules, matches what `runwasm install` writes, and the Kubernetes examples classify as
their comments say."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import tomlkit
import wasmtime
from fstree import put

from runwasm import annotations as ann
from runwasm.cli import install as inst
from runwasm.config import NodeConfig
from runwasm.handler.classify import classify

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
CRIO_DROPIN = CONFIGS / "crio" / "10-runwasm.conf"
CRIO_PLATFORM = CONFIGS / "crio" / "10-runwasm-platform.conf.example"
CONTAINERD = CONFIGS / "containerd" / "runwasm.toml"
KUBERNETES = CONFIGS / "kubernetes"
PACKAGE_PATH = "/usr/bin/runwasm"  # where the .deb/.rpm put runwasm
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-yaml (scripts/setup.sh)
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56


def toml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomlkit.parse(path.read_text()).unwrap()
    return data


def crio_handler(path: Path, name: str) -> dict[str, Any]:
    table: dict[str, Any] = toml(path)["crio"]["runtime"]["runtimes"][name]
    return table


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match, as containerd applies pod_annotations (`*` stops at `/`)."""
    regex = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
                    for c in pattern)
    return re.fullmatch(regex, name) is not None


# ---------------------------------------------------------------------------------------
# CRI-O


def test_crio_dropin_is_the_install_template() -> None:
    expected = inst.CRIO_HEADER + inst.CRIO_HANDLER_TEMPLATE.format(
        handler="runwasm", path=PACKAGE_PATH, root="/run/runwasm",
        path_env=inst.DEFAULT_PATH_ENV)
    assert CRIO_DROPIN.read_text() == expected


def test_crio_dropin_dedicated_handler() -> None:
    data = toml(CRIO_DROPIN)
    assert list(data) == ["crio"], "a drop-in must touch nothing but its own handler"
    assert list(data["crio"]["runtime"]["runtimes"]) == ["runwasm"]
    assert list(data["crio"]["runtime"]) == ["runtimes"]
    table = crio_handler(CRIO_DROPIN, "runwasm")
    assert set(table) <= inst.CRIO_HANDLER_KEYS
    assert table["runtime_path"] == PACKAGE_PATH
    assert table["runtime_type"] == "oci"
    assert table["runtime_root"] == "/run/runwasm"
    # monitor settings are inherited from [crio.runtime] / CRI-O's defaults
    assert "monitor_path" not in table and "monitor_cgroup" not in table
    assert table["monitor_env"] == [inst.DEFAULT_PATH_ENV]


def test_crio_allowed_annotations_are_exactly_the_wasm_ones() -> None:
    allowed = crio_handler(CRIO_DROPIN, "runwasm")["allowed_annotations"]
    assert allowed == ["module.wasm.image/variant", "run.oci."]
    # CRI-O drops the whole handler for an entry outside its own list:
    assert all(a in inst.CRIO_ALLOWED_ANNOTATIONS for a in allowed)
    assert "run.oci.handler" not in allowed and not any(
        a.startswith("runwasm.io/") for a in allowed)


def test_crio_known_list_refuses_what_crio_refuses() -> None:
    for refused in ("run.oci.handler", "runwasm.io/engine", "runwasm.io/"):
        assert refused not in inst.CRIO_ALLOWED_ANNOTATIONS
    assert {"module.wasm.image/variant", "run.oci."} <= inst.CRIO_ALLOWED_ANNOTATIONS


def test_crio_packaged_glob_installs_only_the_dedicated_dropin() -> None:
    # The packages install configs/crio/*.conf into /etc/crio/crio.conf.d/, and CRI-O reads
    # every file there: the platform variant must not be one of them.
    assert sorted(p.name for p in (CONFIGS / "crio").glob("*.conf")) == ["10-runwasm.conf"]


def test_crio_platform_example_is_the_install_template() -> None:
    expected = inst.CRIO_PLATFORM_HEADER + inst.CRIO_PLATFORM_TEMPLATE.format(
        handler="runc", path=PACKAGE_PATH, path_env=inst.DEFAULT_PATH_ENV)
    assert CRIO_PLATFORM.read_text() == expected


def test_crio_platform_example_restates_runc_and_routes_wasi() -> None:
    data = toml(CRIO_PLATFORM)
    assert list(data["crio"]["runtime"]["runtimes"]) == ["runc"]
    runc = crio_handler(CRIO_PLATFORM, "runc")
    assert set(runc) <= inst.CRIO_HANDLER_KEYS
    assert runc["runtime_type"] == "oci"
    assert runc["runtime_root"] == "/run/runc"
    assert runc["runtime_path"] == ""  # runc from PATH, as CRI-O's own default
    assert all(a in inst.CRIO_ALLOWED_ANNOTATIONS for a in runc["allowed_annotations"])
    assert "module.wasm.image/variant" not in runc["allowed_annotations"]
    assert runc["platform_runtime_paths"] == {"wasi/wasm32": PACKAGE_PATH,
                                              "wasi/wasm": PACKAGE_PATH}


def test_crio_platform_example_documents_the_recognition() -> None:
    text = CRIO_PLATFORM.read_text()
    assert "platform-runtime-path.crio.io" in text
    assert "compat-smart" in text


def test_platform_routed_container_classifies_as_wasm(tmp_path: Path) -> None:
    """What CRI-O writes for a wasi/wasm32 image under the platform example."""
    rootfs = tmp_path / "rootfs"
    put(rootfs, "/app.wasm", bytes(wasmtime.wat2wasm('(module (func (export "_start")))')))
    spec = {"process": {"args": ["/app.wasm"], "cwd": "/", "env": []},
            "annotations": {"platform-runtime-path.crio.io": PACKAGE_PATH,
                            "io.kubernetes.cri-o.ContainerType": "container"}}
    assert classify(spec, str(rootfs), NodeConfig()).wasm is True


# ---------------------------------------------------------------------------------------
# containerd


def test_containerd_snippet_is_the_install_template() -> None:
    expected = inst.CONTAINERD_HEADER + inst.CONTAINERD_TEMPLATE.format(
        handler="runwasm", path=PACKAGE_PATH)
    assert CONTAINERD.read_text() == expected


def test_containerd_snippet_runc_shim_with_binary_name() -> None:
    data = toml(CONTAINERD)
    assert data["version"] == 2
    runtime = data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runwasm"]
    assert runtime["runtime_type"] == "io.containerd.runc.v2"
    assert runtime["options"] == {"BinaryName": PACKAGE_PATH}


@pytest.mark.parametrize("key", [ann.ENGINE, ann.VARIANT, ann.HANDLER, "runwasm.io/max-memory",
                                 "runwasm.io/timeout", "runwasm.io/fuel"])
def test_containerd_pod_annotations_pass_runwasm_keys(key: str) -> None:
    data = toml(CONTAINERD)
    patterns = data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"][
        "runwasm"]["pod_annotations"]
    assert any(path_match(p, key) for p in patterns), (key, patterns)


def test_path_match_is_go_like() -> None:
    assert path_match("runwasm.io/*", "runwasm.io/engine")
    assert not path_match("runwasm.*", "runwasm.io/engine")


@pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd is not installed")
def test_containerd_reads_the_snippet(tmp_path: Path) -> None:
    """containerd itself parses the snippet and keeps the runtime (config dump)."""
    config = tmp_path / "config.toml"
    config.write_text(CONTAINERD.read_text().replace(
        "version = 2\n", f'version = 2\nroot = "{tmp_path}/root"\nstate = "{tmp_path}/state"\n'))
    result = subprocess.run(["containerd", "--config", str(config), "config", "dump"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    dumped = tomlkit.parse(result.stdout).unwrap()
    runtime = dumped["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"][
        "runwasm"]
    assert runtime["runtime_type"] == "io.containerd.runc.v2"
    assert runtime["options"]["BinaryName"] == PACKAGE_PATH
    assert "runwasm.io/*" in runtime["pod_annotations"]


# ---------------------------------------------------------------------------------------
# Kubernetes


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    """Every YAML file parsed by PyYAML (Debian's python3-yaml on the system Python)."""
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.fail(f"{SYSTEM_PYTHON} is missing (scripts/setup.sh installs python3-yaml)")
    code = ("import json, sys, yaml; print(json.dumps({p: list(yaml.safe_load_all(open(p)))"
            " for p in sys.argv[1:]}))")
    files = sorted(str(p) for p in KUBERNETES.glob("*.yaml"))
    result = subprocess.run([SYSTEM_PYTHON, "-c", code, *files], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    out = {}
    for path, docs in parsed.items():
        assert len(docs) == 1, f"{path}: one object per file"
        out[Path(path).name] = docs[0]
    return out


def test_manifest_files(manifests: dict[str, dict[str, Any]]) -> None:
    assert sorted(manifests) == ["pod-wasm-engine-limits.yaml", "pod-wasm-sidecar.yaml",
                                 "pod-wasm.yaml", "runtimeclass.yaml"]


def test_runtimeclass_names_the_handler(manifests: dict[str, dict[str, Any]]) -> None:
    rc = manifests["runtimeclass.yaml"]
    assert rc["apiVersion"] == "node.k8s.io/v1" and rc["kind"] == "RuntimeClass"
    assert rc["handler"] == "runwasm"
    assert rc["handler"] in crio_handler_names()
    assert rc["handler"] in toml(CONTAINERD)["plugins"]["io.containerd.grpc.v1.cri"][
        "containerd"]["runtimes"]


def crio_handler_names() -> list[str]:
    return list(toml(CRIO_DROPIN)["crio"]["runtime"]["runtimes"])


def pods(manifests: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, m) for name, m in manifests.items() if m["kind"] == "Pod"]


def test_pods_use_the_runtime_class(manifests: dict[str, dict[str, Any]]) -> None:
    rc = manifests["runtimeclass.yaml"]["metadata"]["name"]
    for name, pod in pods(manifests):
        assert pod["apiVersion"] == "v1", name
        assert pod["spec"]["runtimeClassName"] == rc, name
        for container in pod["spec"]["containers"]:
            assert container["name"] and container["image"], name


def test_pod_annotations_pass_crio_and_containerd(manifests: dict[str, dict[str, Any]]
                                                  ) -> None:
    """Each annotation either passes CRI-O's filter for this handler unfiltered
    (runwasm.io/), or is allowed by the drop-in; containerd passes it by pattern."""
    allowed = crio_handler(CRIO_DROPIN, "runwasm")["allowed_annotations"]
    patterns = toml(CONTAINERD)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"][
        "runtimes"]["runwasm"]["pod_annotations"]
    for name, pod in pods(manifests):
        for key in pod["metadata"].get("annotations", {}):
            assert key.startswith("runwasm.io/") or any(
                key == a or (a.endswith(".") and key.startswith(a)) for a in allowed), (
                name, key)
            assert any(path_match(p, key) for p in patterns), (name, key)


def container_spec(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """config.json as CRI-O writes it for one container (pod annotations copied in)."""
    annotations = {str(k): str(v) for k, v in pod["metadata"].get("annotations", {}).items()}
    annotations["io.kubernetes.cri-o.ContainerType"] = "container"
    args = [*(container.get("command") or ["/app.wasm"]), *(container.get("args") or [])]
    return {"annotations": annotations,
            "process": {"args": args, "cwd": "/", "env": ["PATH=/bin"]}}


def image_rootfs(tmp_path: Path, container: dict[str, Any]) -> Path:
    """A stand-in for the container's image: a Wasm module, or busybox's ELF `sh`."""
    rootfs = tmp_path / container["name"]
    if "wasm" in container["image"]:
        put(rootfs, "/app.wasm", bytes(wasmtime.wat2wasm('(module (func (export "_start")))')))
    else:
        put(rootfs, "/bin/sh", ELF)
        os.chmod(rootfs / "bin" / "sh", 0o755)
    return rootfs


@pytest.mark.parametrize("pod_file, expected", [
    ("pod-wasm.yaml", {"hello": True}),
    ("pod-wasm-sidecar.yaml", {"app": True, "sidecar": False}),
    ("pod-wasm-engine-limits.yaml", {"app": True}),
])
def test_pods_classify_as_documented(manifests: dict[str, dict[str, Any]], tmp_path: Path,
                                     pod_file: str, expected: dict[str, bool]) -> None:
    pod = manifests[pod_file]
    got = {}
    for container in pod["spec"]["containers"]:
        spec = container_spec(pod, container)
        decision = classify(spec, str(image_rootfs(tmp_path, container)), NodeConfig())
        got[container["name"]] = decision.wasm
    assert got == expected


def test_engine_and_limits_pod_values_are_valid(manifests: dict[str, dict[str, Any]]) -> None:
    from runwasm import limits

    pod = manifests["pod-wasm-engine-limits.yaml"]
    annotations = pod["metadata"]["annotations"]
    assert annotations[ann.ENGINE] == "wasmtime"
    requested, asked, _ = limits.requested({"annotations": annotations})
    assert requested.max_memory == 64 << 20
    assert requested.timeout == 30
    assert requested.fuel == 1_000_000_000
    assert set(asked) == {limits.MAX_MEMORY, limits.TIMEOUT, limits.FUEL}


"""CRI-O's platform_runtime_paths mode: a container CRI-O routed to this runwasm by its
image platform (recorded in `platform-runtime-path.crio.io`, formerly
`io.kubernetes.cri-o.PlatformRuntimePath`) is sniffed as with compat-smart, because that
handler strips `module.wasm.image/variant`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wasmtime
from fstree import put

from runwasm.config import NodeConfig
from runwasm.errors import RunwasmError
from runwasm.handler.classify import PLATFORM_RUNTIME_PATH_KEYS, Decision, classify

NEW_KEY = "platform-runtime-path.crio.io"
OLD_KEY = "io.kubernetes.cri-o.PlatformRuntimePath"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56


def spec(annotations: dict[str, str]) -> dict[str, Any]:
    return {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "annotations": annotations,
            "process": {"args": ["/app.wasm"], "cwd": "/", "env": ["PATH=/bin"]}}


@pytest.fixture
def runwasm_binary(tmp_path: Path) -> Path:
    """Stands for the path in platform_runtime_paths (runwasm, or a wrapper of it)."""
    binary = tmp_path / "usr" / "bin" / "runwasm"
    put(binary.parent, "runwasm", b"#!/bin/sh\n")
    return binary


@pytest.fixture
def wasm_image(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    put(rootfs, "/app.wasm", bytes(wasmtime.wat2wasm('(module (func (export "_start")))')))
    return rootfs


@pytest.fixture
def elf_image(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    put(rootfs, "/app.wasm", ELF)
    return rootfs


def run(rootfs: Path, annotations: dict[str, str], config: NodeConfig | None = None
        ) -> Decision:
    return classify(spec(annotations), str(rootfs), config or NodeConfig())


def test_both_keys_are_known() -> None:
    assert set(PLATFORM_RUNTIME_PATH_KEYS) == {NEW_KEY, OLD_KEY}


@pytest.mark.parametrize("key", [NEW_KEY, OLD_KEY])
def test_routed_here_runs_wasm(wasm_image: Path, runwasm_binary: Path, key: str) -> None:
    decision = run(wasm_image, {key: str(runwasm_binary)})
    assert decision.wasm is True
    assert decision.engine == "wasmtime"
    assert decision.module == "/app.wasm"
    assert decision.reason.startswith(f"{key}={runwasm_binary}: /app.wasm is Wasm")


@pytest.mark.parametrize("key", [NEW_KEY, OLD_KEY])
def test_routed_here_elf_goes_to_runc(elf_image: Path, runwasm_binary: Path, key: str) -> None:
    decision = run(elf_image, {key: str(runwasm_binary)})
    assert decision.wasm is False
    assert key in decision.reason and "ELF" in decision.reason


def test_routed_here_unknown_content_is_an_error(tmp_path: Path, runwasm_binary: Path) -> None:
    rootfs = tmp_path / "rootfs"
    put(rootfs, "/app.wasm", b"plain text, not a program\n")
    with pytest.raises(RunwasmError, match=NEW_KEY):
        run(rootfs, {NEW_KEY: str(runwasm_binary)})


def test_empty_value_means_no_platform_path(wasm_image: Path, runwasm_binary: Path) -> None:
    # CRI-O writes the annotation on every container, empty when no platform matched.
    decision = run(wasm_image, {NEW_KEY: "", OLD_KEY: ""})
    assert decision.wasm is False
    assert decision.reason == "no Wasm annotation"


@pytest.mark.parametrize("path", ["/usr/local/bin/runwasm-logging-shim",
                                  "/usr/bin/env", "/nonexistent/wrapper.sh", "runwasm"])
def test_any_platform_path_means_routed_here(wasm_image: Path, path: str) -> None:
    # CRI-O sends create to the platform path only for an image that matched a platform;
    # runwasm running that create means the path led here, whatever it names: a wrapper
    # script, `env`, a symlink, a name on PATH. Its file is not compared with runwasm's.
    decision = run(wasm_image, {NEW_KEY: path})
    assert decision.wasm is True
    assert decision.reason.startswith(f"{NEW_KEY}={path}: /app.wasm is Wasm")


def test_wrapper_script_routes_elf_to_runc(elf_image: Path, tmp_path: Path) -> None:
    wrapper = put(tmp_path / "bin", "runwasm-wrapper", b"#!/bin/sh\nexec runwasm \"$@\"\n")
    decision = run(elf_image, {NEW_KEY: str(wrapper)})
    assert decision.wasm is False
    assert "ELF" in decision.reason


def test_blank_value_is_no_platform_path(wasm_image: Path) -> None:
    assert run(wasm_image, {NEW_KEY: "  ", OLD_KEY: ""}).wasm is False


def test_sandbox_stays_linux(wasm_image: Path, runwasm_binary: Path) -> None:
    decision = run(wasm_image, {NEW_KEY: str(runwasm_binary),
                                "io.kubernetes.cri-o.ContainerType": "sandbox"})
    assert decision.wasm is False


def test_explicit_compat_still_forces(elf_image: Path, runwasm_binary: Path) -> None:
    # A handler that does allow module.wasm.image/variant: the pod's word wins.
    with pytest.raises(RunwasmError, match="module.wasm.image/variant=compat"):
        run(elf_image, {NEW_KEY: str(runwasm_binary),
                        "module.wasm.image/variant": "compat"})


def test_explicit_smart_annotation_named_in_reason(wasm_image: Path,
                                                   runwasm_binary: Path) -> None:
    decision = run(wasm_image, {NEW_KEY: str(runwasm_binary),
                                "module.wasm.image/variant": "compat-smart"})
    assert decision.wasm is True
    assert decision.reason.startswith("module.wasm.image/variant=compat-smart")


def test_engine_annotation_picks_engine(wasm_image: Path, runwasm_binary: Path) -> None:
    decision = run(wasm_image, {NEW_KEY: str(runwasm_binary), "runwasm.io/engine": "wasm"},
                   config=NodeConfig(default_engine="wasmtime"))
    assert decision.wasm is True
    assert decision.engine == "wasmtime"


def test_beats_node_annotations_mode_but_not_needed_in_smart_mode(
        wasm_image: Path, runwasm_binary: Path) -> None:
    smart = NodeConfig(path="/etc/runwasm/x.toml", detection="smart")
    decision = run(wasm_image, {NEW_KEY: str(runwasm_binary)}, config=smart)
    assert decision.wasm is True
    assert decision.reason.startswith(NEW_KEY)

"""runwasm.handler.classify: the rules of DESIGN.md "Classification", in order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from fstree import link, put

from runwasm.config import NodeConfig
from runwasm.errors import RunwasmError
from runwasm.handler.classify import Decision, classify

ENGINE = "runwasm.io/engine"
VARIANT = "module.wasm.image/variant"
HANDLER = "run.oci.handler"
SANDBOX_KEYS = ("io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType")

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
SCRIPT = b"#!/bin/sh\necho hi\n"
WAT_TEXT = b'(module (func (export "_start")))\n'
GARBAGE = b"hello, this is not a program\n"

DEFAULT = NodeConfig()
SMART = NodeConfig(path="/etc/runwasm/test.toml", detection="smart")


def spec(annotations: dict[str, str] | None = None, args: list[str] | None = None,
         cwd: str = "/", env: list[str] | None = None) -> dict[str, Any]:
    process: dict[str, Any] = {"args": ["/app.wasm"] if args is None else args, "cwd": cwd,
                               "env": env if env is not None else ["PATH=/usr/bin:/bin"]}
    result: dict[str, Any] = {"ociVersion": "1.0.2", "process": process,
                              "root": {"path": "rootfs"}}
    if annotations is not None:
        result["annotations"] = annotations
    return result


def run(rootfs: Path, annotations: dict[str, str] | None = None,
        config: NodeConfig = DEFAULT, **kw: Any) -> Decision:
    return classify(spec(annotations, **kw), str(rootfs), config)


@pytest.fixture(scope="module")
def command_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm('(module (func (export "_start")))'))


@pytest.fixture(scope="module")
def component_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm("(component)"))


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    """An empty image root filesystem."""
    root = tmp_path / "rootfs"
    root.mkdir()
    return root


@pytest.fixture
def wasm_image(rootfs: Path, command_wasm: bytes) -> Path:
    put(rootfs, "/app.wasm", command_wasm)
    return rootfs


@pytest.fixture
def elf_image(rootfs: Path) -> Path:
    put(rootfs, "/app.wasm", ELF)
    return rootfs


# ---------------------------------------------------------------------------------------
# 1. sandbox


@pytest.mark.parametrize("key", SANDBOX_KEYS)
@pytest.mark.parametrize(
    "wasm_annotations",
    [
        {ENGINE: "wasmtime"},
        {HANDLER: "wasm"},
        {VARIANT: "compat"},
        {VARIANT: "compat-smart"},
        {ENGINE: "not-an-engine"},  # not even validated: a sandbox is never Wasm
    ],
)
def test_sandbox_is_linux(wasm_image: Path, key: str, wasm_annotations: dict[str, str]) -> None:
    decision = run(wasm_image, {key: "sandbox", **wasm_annotations})
    assert decision.wasm is False
    assert key in decision.reason
    assert decision.engine == ""


def test_sandbox_is_linux_even_in_smart_mode(wasm_image: Path) -> None:
    decision = run(wasm_image, {SANDBOX_KEYS[1]: "sandbox"}, config=SMART)
    assert decision.wasm is False


@pytest.mark.parametrize("key", SANDBOX_KEYS)
def test_container_type_container_is_not_sandbox(wasm_image: Path, key: str) -> None:
    decision = run(wasm_image, {key: "container", ENGINE: "wasmtime"})
    assert decision.wasm is True


# ---------------------------------------------------------------------------------------
# 2. an engine named


@pytest.mark.parametrize("engine", ["wasmtime", "wasmedge", "wasmer"])
def test_runwasm_engine(wasm_image: Path, engine: str) -> None:
    decision = run(wasm_image, {ENGINE: engine})
    assert decision.wasm is True
    assert decision.engine == engine
    assert decision.kind == "module"
    assert decision.module == "/app.wasm"
    assert decision.host_module == str(wasm_image / "app.wasm")
    assert ENGINE in decision.reason


@pytest.mark.parametrize("default", ["wasmtime", "wasmedge", "wasmer"])
def test_engine_wasm_is_node_default(wasm_image: Path, default: str) -> None:
    decision = run(wasm_image, {ENGINE: "wasm"}, config=NodeConfig(default_engine=default))
    assert decision.wasm is True
    assert decision.engine == default


def test_engine_value_is_stripped(wasm_image: Path) -> None:
    assert run(wasm_image, {ENGINE: " wasmer\n"}).engine == "wasmer"


@pytest.mark.parametrize("engine", ["wasmtime", "wasmedge", "wasmer"])
def test_oci_handler_names_engine(wasm_image: Path, engine: str) -> None:
    decision = run(wasm_image, {HANDLER: engine},
                   config=NodeConfig(default_engine="wasmtime" if engine != "wasmtime"
                                     else "wasmer"))
    assert decision.wasm is True
    assert decision.engine == engine
    assert HANDLER in decision.reason


def test_runwasm_engine_wins_over_oci_handler(wasm_image: Path) -> None:
    decision = run(wasm_image, {ENGINE: "wasmer", HANDLER: "wasmedge"})
    assert decision.engine == "wasmer"


def test_engine_forces_wasm_on_elf_is_error(elf_image: Path) -> None:
    with pytest.raises(RunwasmError) as info:
        run(elf_image, {ENGINE: "wasmtime"})
    assert "ELF" in str(info.value)
    assert "/app.wasm" in str(info.value)


def test_engine_with_compat_smart_sniffs(elf_image: Path, command_wasm: bytes) -> None:
    """Naming the engine once keeps ELF sidecars working with compat-smart."""
    decision = run(elf_image, {ENGINE: "wasmer", VARIANT: "compat-smart"})
    assert decision.wasm is False
    put(elf_image, "/app.wasm", command_wasm)
    decision = run(elf_image, {ENGINE: "wasmer", VARIANT: "compat-smart"})
    assert decision.wasm is True
    assert decision.engine == "wasmer"


def test_oci_handler_engine_with_compat_smart_sniffs(elf_image: Path) -> None:
    decision = run(elf_image, {HANDLER: "wasmedge", VARIANT: "compat-smart"})
    assert decision.wasm is False


# ---------------------------------------------------------------------------------------
# 3. compat / run.oci.handler=wasm


@pytest.mark.parametrize("annotations", [{VARIANT: "compat"}, {HANDLER: "wasm"}])
def test_forced_wasm_uses_node_default(wasm_image: Path, annotations: dict[str, str]) -> None:
    decision = run(wasm_image, annotations, config=NodeConfig(default_engine="wasmedge"))
    assert decision.wasm is True
    assert decision.engine == "wasmedge"
    assert decision.kind == "module"
    key = next(iter(annotations))
    assert key in decision.reason


@pytest.mark.parametrize("annotations", [{VARIANT: "compat"}, {HANDLER: "wasm"}])
@pytest.mark.parametrize(("data", "word"), [(ELF, "ELF"), (SCRIPT, "script")])
def test_forced_wasm_on_elf_or_script_is_error(rootfs: Path, annotations: dict[str, str],
                                               data: bytes, word: str) -> None:
    put(rootfs, "/app.wasm", data)
    with pytest.raises(RunwasmError) as info:
        run(rootfs, annotations)
    message = str(info.value)
    assert word in message
    assert "compat-smart" in message  # the hint
    assert next(iter(annotations)) in message


def test_forced_wasm_on_unknown_content_is_error(rootfs: Path) -> None:
    put(rootfs, "/app.wasm", GARBAGE)
    with pytest.raises(RunwasmError, match="not WebAssembly"):
        run(rootfs, {VARIANT: "compat"})


def test_forced_wasm_missing_module_is_error(rootfs: Path) -> None:
    with pytest.raises(RunwasmError) as info:
        run(rootfs, {VARIANT: "compat"})
    assert "/app.wasm" in str(info.value)
    assert "not found" in str(info.value)


def test_forced_wasm_empty_args_is_error(wasm_image: Path) -> None:
    with pytest.raises(RunwasmError, match="process.args is empty"):
        run(wasm_image, {HANDLER: "wasm"}, args=[])


def test_forced_wasm_no_process_is_error(wasm_image: Path) -> None:
    with pytest.raises(RunwasmError):
        classify({"annotations": {VARIANT: "compat"}}, str(wasm_image), DEFAULT)


def test_forced_beats_smart(elf_image: Path) -> None:
    """Rule 3 comes before rule 4: compat wins over wasm-smart beside it."""
    with pytest.raises(RunwasmError):
        run(elf_image, {VARIANT: "compat", HANDLER: "wasm-smart"})
    with pytest.raises(RunwasmError):
        run(elf_image, {HANDLER: "wasm", VARIANT: "compat-smart"})


def test_forced_beats_node_smart_mode(elf_image: Path) -> None:
    with pytest.raises(RunwasmError):
        run(elf_image, {VARIANT: "compat"}, config=SMART)


def test_engine_annotation_beats_node_smart_mode(elf_image: Path) -> None:
    """Rule 2 before rule 4: the node's smart mode is not a smart annotation beside it."""
    with pytest.raises(RunwasmError, match="ELF"):
        run(elf_image, {ENGINE: "wasmtime"}, config=SMART)


def test_engine_annotation_with_handler_wasm(wasm_image: Path) -> None:
    decision = run(wasm_image, {HANDLER: "wasm", ENGINE: "wasmer"},
                   config=NodeConfig(default_engine="wasmedge"))
    assert decision.wasm is True
    assert decision.engine == "wasmer"


def test_forced_component_and_wat(rootfs: Path, component_wasm: bytes) -> None:
    put(rootfs, "/c.wasm", component_wasm)
    put(rootfs, "/t.wat", WAT_TEXT)
    assert run(rootfs, {VARIANT: "compat"}, args=["/c.wasm"]).kind == "component"
    assert run(rootfs, {VARIANT: "compat"}, args=["/t.wat"]).kind == "wat"


# ---------------------------------------------------------------------------------------
# 4. smart


SMART_WAYS: list[tuple[dict[str, str], NodeConfig]] = [
    ({VARIANT: "compat-smart"}, DEFAULT),
    ({HANDLER: "wasm-smart"}, DEFAULT),
    ({}, SMART),
]
SMART_IDS = ["compat-smart", "wasm-smart", "node-smart"]


@pytest.mark.parametrize(("annotations", "config"), SMART_WAYS, ids=SMART_IDS)
def test_smart_core_module(rootfs: Path, command_wasm: bytes, annotations: dict[str, str],
                           config: NodeConfig) -> None:
    put(rootfs, "/app.wasm", command_wasm)
    decision = run(rootfs, annotations, config=config)
    assert decision.wasm is True
    assert decision.kind == "module"
    assert decision.engine == config.default_engine
    assert decision.module == "/app.wasm"
    assert decision.host_module == str(rootfs / "app.wasm")


@pytest.mark.parametrize(("annotations", "config"), SMART_WAYS, ids=SMART_IDS)
def test_smart_component(rootfs: Path, component_wasm: bytes, annotations: dict[str, str],
                         config: NodeConfig) -> None:
    assert component_wasm[4:8] == b"\x0d\x00\x01\x00"
    put(rootfs, "/app.wasm", component_wasm)
    decision = run(rootfs, annotations, config=config)
    assert decision.wasm is True
    assert decision.kind == "component"


@pytest.mark.parametrize(("annotations", "config"), SMART_WAYS, ids=SMART_IDS)
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("/app.wat", WAT_TEXT),
        ("/app.wat", b"anything at all in a .wat file"),
        ("/app", b";; a comment\n(; block ;)\n  (module)\n"),
        ("/app", b"\xef\xbb\xbf(component)"),
    ],
)
def test_smart_wat(rootfs: Path, annotations: dict[str, str], config: NodeConfig, name: str,
                   data: bytes) -> None:
    put(rootfs, name, data)
    decision = run(rootfs, annotations, config=config, args=[name])
    assert decision.wasm is True
    assert decision.kind == "wat"


@pytest.mark.parametrize(("annotations", "config"), SMART_WAYS, ids=SMART_IDS)
@pytest.mark.parametrize(("data", "word"), [(ELF, "ELF"), (SCRIPT, "script")])
def test_smart_elf_and_script_are_linux(rootfs: Path, annotations: dict[str, str],
                                        config: NodeConfig, data: bytes, word: str) -> None:
    put(rootfs, "/app.wasm", data)
    decision = run(rootfs, annotations, config=config)
    assert decision.wasm is False
    assert word in decision.reason
    assert decision.engine == ""


@pytest.mark.parametrize(("annotations", "config"), SMART_WAYS, ids=SMART_IDS)
@pytest.mark.parametrize("data", [GARBAGE, b"", b"\0as", b"MZ\x90\x00"])
def test_smart_unknown_content_is_error(rootfs: Path, annotations: dict[str, str],
                                        config: NodeConfig, data: bytes) -> None:
    put(rootfs, "/app.wasm", data)
    with pytest.raises(RunwasmError) as info:
        run(rootfs, annotations, config=config)
    assert "/app.wasm" in str(info.value)
    assert "neither WebAssembly nor an ELF" in str(info.value)


@pytest.mark.parametrize(("annotations", "config"), SMART_WAYS, ids=SMART_IDS)
def test_smart_missing_entrypoint_is_linux(rootfs: Path, annotations: dict[str, str],
                                           config: NodeConfig) -> None:
    decision = run(rootfs, annotations, config=config)
    assert decision.wasm is False
    assert "not found" in decision.reason


@pytest.mark.parametrize(("annotations", "config"), SMART_WAYS, ids=SMART_IDS)
def test_smart_no_args_is_linux(wasm_image: Path, annotations: dict[str, str],
                                config: NodeConfig) -> None:
    assert run(wasm_image, annotations, config=config, args=[]).wasm is False


def test_node_smart_reason_names_config(wasm_image: Path) -> None:
    decision = run(wasm_image, None, config=SMART)
    assert "detection=smart" in decision.reason
    assert SMART.path in decision.reason


def test_smart_uses_default_engine(wasm_image: Path) -> None:
    config = NodeConfig(default_engine="wasmedge", detection="smart")
    assert run(wasm_image, {}, config=config).engine == "wasmedge"
    assert run(wasm_image, {VARIANT: "compat-smart"},
               config=NodeConfig(default_engine="wasmer")).engine == "wasmer"


# ---------------------------------------------------------------------------------------
# 5. otherwise Linux


@pytest.mark.parametrize(
    "annotations",
    [None, {}, {"io.kubernetes.pod.name": "p", "runwasm.io/limits": "x"},
     {"platform-runtime-path.crio.io": ""}],  # CRI-O: no platform path matched
)
def test_no_wasm_annotation_is_linux(wasm_image: Path,
                                     annotations: dict[str, str] | None) -> None:
    decision = run(wasm_image, annotations)
    assert decision.wasm is False
    assert decision.reason == "no Wasm annotation"


def test_linux_decision_does_not_need_the_rootfs(tmp_path: Path) -> None:
    decision = classify(spec({}), str(tmp_path / "does-not-exist"), DEFAULT)
    assert decision.wasm is False


# ---------------------------------------------------------------------------------------
# invalid values


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (ENGINE, "wasmtime2"),
        (ENGINE, "Wasmtime"),
        (ENGINE, ""),
        (ENGINE, "compat"),
        (VARIANT, "compat-smartest"),
        (VARIANT, "wasm"),
        (VARIANT, ""),
        (HANDLER, "krun"),
        (HANDLER, "WASM"),
        (HANDLER, "compat"),
    ],
)
def test_invalid_value_names_key(wasm_image: Path, key: str, value: str) -> None:
    with pytest.raises(RunwasmError) as info:
        run(wasm_image, {key: value})
    assert key in str(info.value)
    assert repr(value.strip()) in str(info.value)


def test_invalid_value_fails_even_beside_a_valid_one(wasm_image: Path) -> None:
    with pytest.raises(RunwasmError, match=VARIANT):
        run(wasm_image, {ENGINE: "wasmtime", VARIANT: "nope"})


# ---------------------------------------------------------------------------------------
# entry points: PATH, cwd, symlinks


def test_entry_on_path(rootfs: Path, command_wasm: bytes) -> None:
    put(rootfs, "/opt/wasm/bin/app", command_wasm)
    decision = run(rootfs, {VARIANT: "compat"}, args=["app"],
                   env=["A=1", "PATH=/usr/bin:/opt/wasm/bin"])
    assert decision.wasm is True
    assert decision.module == "/opt/wasm/bin/app"
    assert decision.host_module == str(rootfs / "opt/wasm/bin/app")


def test_entry_on_path_first_match(rootfs: Path, command_wasm: bytes) -> None:
    put(rootfs, "/a/app", ELF)
    put(rootfs, "/b/app", command_wasm)
    assert run(rootfs, {VARIANT: "compat-smart"}, args=["app"], env=["PATH=/a:/b"]).wasm is False
    assert run(rootfs, {VARIANT: "compat-smart"}, args=["app"], env=["PATH=/b:/a"]).wasm is True


def test_entry_relative_to_cwd(rootfs: Path, command_wasm: bytes) -> None:
    put(rootfs, "/srv/app/main.wasm", command_wasm)
    for arg in ("./main.wasm", "main.wasm", "../app/main.wasm"):
        decision = run(rootfs, {ENGINE: "wasmtime"}, args=[arg], cwd="/srv/app")
        assert decision.module == "/srv/app/main.wasm", arg
        assert decision.host_module == str(rootfs / "srv/app/main.wasm")


def test_entry_absolute_symlink_resolves_inside_rootfs(rootfs: Path, command_wasm: bytes) -> None:
    link(rootfs, "/app.wasm", "/etc/passwd")
    put(rootfs, "/etc/passwd", command_wasm)
    decision = run(rootfs, {VARIANT: "compat-smart"})
    assert decision.wasm is True
    assert decision.module == "/app.wasm"
    assert decision.host_module == str(rootfs / "etc/passwd")


def test_entry_absolute_symlink_never_reads_host(rootfs: Path) -> None:
    # The host's /etc/passwd is text: reading it would be an "unknown content" error.
    assert os.path.isfile("/etc/passwd")
    link(rootfs, "/app.wasm", "/etc/passwd")
    decision = run(rootfs, {VARIANT: "compat-smart"})
    assert decision.wasm is False
    assert "not found" in decision.reason
    with pytest.raises(RunwasmError, match="not found"):
        run(rootfs, {VARIANT: "compat"})


def test_entry_relative_symlink_escape_clamped(rootfs: Path, command_wasm: bytes) -> None:
    link(rootfs, "/bin/app", "../../../../../../etc/passwd")
    put(rootfs, "/etc/passwd", command_wasm)
    decision = run(rootfs, {HANDLER: "wasm"}, args=["app"], env=["PATH=/bin"])
    assert decision.module == "/bin/app"
    assert decision.host_module == str(rootfs / "etc/passwd")


def test_entry_symlinked_path_directory(rootfs: Path, command_wasm: bytes) -> None:
    put(rootfs, "/real/bin/app", command_wasm)
    link(rootfs, "/usr/bin", "/real/bin")
    decision = run(rootfs, {HANDLER: "wasmtime"}, args=["app"], env=["PATH=/usr/bin"])
    assert decision.module == "/usr/bin/app"
    assert decision.host_module == str(rootfs / "real/bin/app")


def test_entry_symlinked_cwd(rootfs: Path, command_wasm: bytes) -> None:
    put(rootfs, "/data/m.wasm", command_wasm)
    link(rootfs, "/work", "/data")
    decision = run(rootfs, {HANDLER: "wasm"}, args=["./m.wasm"], cwd="/work")
    assert decision.module == "/work/m.wasm"
    assert decision.host_module == str(rootfs / "data/m.wasm")


@pytest.mark.parametrize("annotations", [{VARIANT: "compat"}, {VARIANT: "compat-smart"}])
def test_entry_symlink_loop_is_a_runwasm_error(rootfs: Path,
                                                annotations: dict[str, str]) -> None:
    link(rootfs, "/app.wasm", "/app.wasm")
    try:
        run(rootfs, annotations)
    except RunwasmError as e:
        assert "/app.wasm" in str(e)


def test_wat_symlink_sniffed_by_target(rootfs: Path) -> None:
    put(rootfs, "/mods/m.wat", b"not really text format")
    link(rootfs, "/app", "/mods/m.wat")
    decision = run(rootfs, {VARIANT: "compat-smart"}, args=["/app"])
    assert decision.wasm is True
    assert decision.kind == "wat"
    assert decision.module == "/app"

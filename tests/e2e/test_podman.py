"""podman + conmon with `--runtime runwasm`: Wasm images built with buildah run, take
args, env, volumes and --read-only, report their exit codes, logs, terminals, exec and
stop; annotations select Wasm; busybox and a pod with a busybox sidecar run unchanged;
removal and failures leave nothing behind."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from e2e_support import (
    BUSYBOX_IMAGE,
    ENGINE,
    RUNC_ROOT,
    RUNWASM,
    VARIANT,
    WASI_IMAGE,
    WASM_IMAGE,
    Containers,
    must,
)

COMPAT = ["--annotation", f"{VARIANT}=compat"]
TOOL = ["--entrypoint", "/tool.wasm"]


def name() -> str:
    return "e2e-" + uuid.uuid4().hex[:10]


def wait_for_log(containers: Containers, container: str, text: str) -> None:
    """Until the container has printed `text` (bounded; not a timing assertion)."""
    for _ in range(300):
        if text in containers.podman("logs", container).stdout:
            return
        time.sleep(0.05)
    raise AssertionError(f"{container} never printed {text!r}: "
                         f"{containers.podman('logs', container).stdout!r}")


def detached(containers: Containers, *args: str) -> str:
    container_id = must(containers.podman("run", "-d", *args)).strip().splitlines()[-1]
    assert len(container_id) == 64, container_id
    return container_id


def remove(containers: Containers, container: str) -> None:
    containers.podman("rm", "--force", "--time", "0", container)


# ---------------------------------------------------------------------------------------
# a Wasm container's life under podman


def test_run_output_args_env(containers: Containers) -> None:
    result = containers.podman("run", "--rm", *COMPAT, "-e", "GREETING=hello from podman",
                               WASM_IMAGE, "5", "two words")
    assert result.returncode == 5, result.stderr
    assert result.stdout.splitlines() == [
        "Hello from WebAssembly!", "argv[0]=/hello.wasm", "argv[1]=5", "argv[2]=two words",
        "GREETING=hello from podman"]


def test_volume_read_and_write(containers: Containers, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "in.txt").write_text("from the host")
    read = containers.podman("run", "--rm", *COMPAT, *TOOL, "-v", f"{volume}:/data",
                             WASM_IMAGE, "read", "/data/in.txt")
    assert read.returncode == 0, read.stderr
    assert read.stdout == "from the host"
    write = containers.podman("run", "--rm", *COMPAT, *TOOL, "-v", f"{volume}:/data",
                              WASM_IMAGE, "write", "/data/out.txt", "from the guest")
    assert write.returncode == 0, write.stderr
    assert (volume / "out.txt").read_text() == "from the guest"


def test_read_only(containers: Containers, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    refused = containers.podman("run", "--rm", "--read-only", *COMPAT, *TOOL, WASM_IMAGE,
                                "write", "/new.txt", "x")
    assert refused.returncode == 1
    assert "error: write /new.txt:" in refused.stderr
    # the volume stays writable under --read-only, the image root does not
    allowed = containers.podman("run", "--rm", "--read-only", *COMPAT, *TOOL, "-v",
                                f"{volume}:/data", WASM_IMAGE, "write", "/data/ok.txt", "ok")
    assert allowed.returncode == 0, allowed.stderr
    assert (volume / "ok.txt").read_text() == "ok"
    writable = containers.podman("run", "--rm", *COMPAT, *TOOL, WASM_IMAGE, "write",
                                 "/new.txt", "x")
    assert writable.returncode == 0, writable.stderr


def test_exit_code_reaches_run_and_wait(containers: Containers) -> None:
    result = containers.podman("run", "--rm", *COMPAT, *TOOL, WASM_IMAGE, "exit", "42")
    assert result.returncode == 42, result.stderr
    container = detached(containers, *COMPAT, *TOOL, WASM_IMAGE, "exit", "7")
    try:
        assert must(containers.podman("wait", container)).strip() == "7"
        assert containers.inspect(container)["State"]["ExitCode"] == 7
    finally:
        remove(containers, container)


def test_logs(containers: Containers) -> None:
    container = detached(containers, *COMPAT, WASM_IMAGE, "logged")
    try:
        assert must(containers.podman("wait", container)).strip() == "0"
        logs = containers.podman("logs", container)
        assert logs.stdout.splitlines() == ["Hello from WebAssembly!", "argv[0]=/hello.wasm",
                                            "argv[1]=logged"]
    finally:
        remove(containers, container)


def test_tty(containers: Containers) -> None:
    tty = containers.podman("run", "--rm", "-t", *COMPAT, *TOOL, WASM_IMAGE, "isatty")
    assert tty.returncode == 0, tty.stderr
    assert tty.stdout.strip() == "isatty=1"
    plain = containers.podman("run", "--rm", *COMPAT, *TOOL, WASM_IMAGE, "isatty")
    assert plain.stdout.strip() == "isatty=0"


def test_exec_wasm_tool(containers: Containers) -> None:
    container = detached(containers, *COMPAT, *TOOL, WASM_IMAGE, "sleep", "600")
    try:
        wait_for_log(containers, container, "sleeping")
        pwd = containers.podman("exec", container, "/tool.wasm", "pwd")
        assert pwd.returncode == 0, pwd.stderr
        assert pwd.stdout == "/\n"
        hello = containers.podman("exec", "-e", "GREETING=from exec", container,
                                  "/hello.wasm", "x")
        assert hello.returncode == 0, hello.stderr
        assert hello.stdout.splitlines() == ["Hello from WebAssembly!", "argv[0]=/hello.wasm",
                                             "argv[1]=x", "GREETING=from exec"]
        code = containers.podman("exec", container, "/tool.wasm", "exit", "3")
        assert code.returncode == 3
        tty = containers.podman("exec", "-t", container, "/tool.wasm", "isatty")
        assert tty.stdout.strip() == "isatty=1"
        refused = containers.podman("exec", container, "/bin/sh")
        assert refused.returncode != 0
        assert (f"runwasm: exec: container {container} runs WebAssembly: /bin/sh is not a "
                "WebAssembly module in the image") in refused.stderr
        # the container itself is unharmed by the refused exec
        assert containers.inspect(container)["State"]["Running"] is True
    finally:
        remove(containers, container)


@pytest.mark.parametrize("command, ready", [(["spin"], "spinning"),
                                            (["sleep", "600"], "sleeping")])
def test_stop_within_2_seconds(containers: Containers, command: list[str], ready: str) -> None:
    container = detached(containers, *COMPAT, *TOOL, WASM_IMAGE, *command)
    try:
        wait_for_log(containers, container, ready)
        started = time.monotonic()
        stopped = containers.podman("stop", container)  # podman's default: 10 s, then KILL
        elapsed = time.monotonic() - started
        assert stopped.returncode == 0, stopped.stderr
        assert elapsed < 2, f"podman stop took {elapsed:.2f} s"
        assert containers.inspect(container)["State"]["ExitCode"] == 143  # 128 + SIGTERM
    finally:
        remove(containers, container)


# ---------------------------------------------------------------------------------------
# which containers are Wasm


@pytest.mark.parametrize("annotation", [f"{VARIANT}=compat", f"{VARIANT}=compat-smart",
                                        f"{ENGINE}=wasmtime", f"{ENGINE}=wasm",
                                        "run.oci.handler=wasm", "run.oci.handler=wasmtime"])
def test_selection_by_annotation(containers: Containers, annotation: str) -> None:
    result = containers.podman("run", "--rm", "--annotation", annotation, WASM_IMAGE, "9")
    assert result.returncode == 9, result.stderr
    assert result.stdout.startswith("Hello from WebAssembly!\n")


def test_without_annotation_the_module_goes_to_runc(containers: Containers) -> None:
    result = containers.podman("run", "--rm", WASM_IMAGE)
    assert result.returncode != 0
    assert "exec format error" in result.stdout + result.stderr


def test_compat_smart_sends_elf_to_runc(containers: Containers) -> None:
    result = containers.podman("run", "--rm", "--annotation", f"{VARIANT}=compat-smart",
                               BUSYBOX_IMAGE, "sh", "-c", "echo linux under compat-smart; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "linux under compat-smart\n"


def test_invalid_annotation_fails_naming_the_key(containers: Containers) -> None:
    result = containers.podman("run", "--rm", "--annotation", f"{ENGINE}=nope", WASM_IMAGE)
    assert result.returncode != 0
    assert f"invalid annotation {ENGINE}='nope'" in result.stderr


def test_wasi_platform_image(containers: Containers) -> None:
    image = containers.buildah("inspect", "--type", "image", WASI_IMAGE)
    config = json.loads(must(image))["OCIv1"]
    assert (config["os"], config["architecture"]) == ("wasi", "wasm")
    result = containers.podman("run", "--rm", *COMPAT, WASI_IMAGE, "4")
    assert result.returncode == 4, result.stderr
    assert "argv[0]=/app.wasm" in result.stdout


def test_wasi_platform_image_routed_like_crio_does(containers: Containers) -> None:
    """No Wasm annotation, only what CRI-O's platform_runtime_paths mode writes."""
    result = containers.podman("run", "--rm", "--annotation",
                               f"platform-runtime-path.crio.io={RUNWASM}", WASI_IMAGE, "6")
    assert result.returncode == 6, result.stderr
    assert "argv[0]=/app.wasm" in result.stdout


# ---------------------------------------------------------------------------------------
# Linux containers and pods through the same runtime


def test_busybox_runs_unchanged(containers: Containers) -> None:
    result = containers.podman("run", "--rm", BUSYBOX_IMAGE, "sh", "-c",
                               "echo hello from busybox; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hello from busybox\n"
    container = detached(containers, BUSYBOX_IMAGE, "sleep", "600")
    try:
        bundle = containers.bundle(container)
        assert not (bundle / ".runwasm").exists()  # runwasm wrote nothing
        spec = json.loads((bundle / "config.json").read_text())
        assert spec["process"]["args"] == ["sleep", "600"]
        assert spec["root"]["path"].endswith("/merged") or "vfs" in spec["root"]["path"]
        execd = containers.podman("exec", container, "sh", "-c", "echo exec in busybox")
        assert execd.stdout == "exec in busybox\n"
    finally:
        remove(containers, container)


def test_pod_with_wasm_and_busybox_sidecar(containers: Containers, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    pod = name()
    must(containers.podman("pod", "create", "--name", pod, "--network", "none"))
    ids = []
    try:
        sidecar = detached(containers, "--pod", pod, "-v", f"{shared}:/shared", BUSYBOX_IMAGE,
                           "sh", "-c", "echo sidecar up; while :; do sleep 0.2; done")
        wasm = containers.podman("run", "--pod", pod, "--name", f"{pod}-wasm", "--annotation",
                                 f"{VARIANT}=compat-smart", "-v", f"{shared}:/shared", *TOOL,
                                 WASM_IMAGE, "write", "/shared/hello.txt", "written by Wasm")
        assert wasm.returncode == 0, wasm.stderr
        wasm_id = containers.inspect(f"{pod}-wasm")["Id"]
        infra_id = json.loads(must(containers.podman("pod", "inspect", pod)))["InfraContainerID"]
        ids = [sidecar, wasm_id, infra_id]
        read = containers.podman("exec", sidecar, "cat", "/shared/hello.txt")
        assert read.stdout == "written by Wasm"
        running = must(containers.podman("ps", "--filter", f"pod={pod}", "--no-trunc",
                                         "--format", "{{.ID}}")).split()
        assert sorted(running) == sorted([sidecar, infra_id])
        assert containers.inspect(wasm_id)["State"]["ExitCode"] == 0
        assert containers.inspect(wasm_id)["Pod"] == containers.inspect(sidecar)["Pod"]
        assert "sidecar up" in containers.podman("logs", sidecar).stdout
    finally:
        must(containers.podman("pod", "rm", "--force", "--time", "0", pod))
    for container in ids:
        assert containers.leftovers(container) == []


# ---------------------------------------------------------------------------------------
# nothing left behind


def test_rm_force_leaves_nothing(containers: Containers) -> None:
    container = detached(containers, *COMPAT, *TOOL, WASM_IMAGE, "sleep", "600")
    wait_for_log(containers, container, "sleeping")
    assert (containers.bundle(container) / ".runwasm").is_dir()
    assert (RUNC_ROOT / container).is_dir()  # a genuine runc container
    must(containers.podman("rm", "--force", container))
    assert containers.leftovers(container) == []


@pytest.mark.parametrize("args, message", [
    ([*COMPAT, "--entrypoint", "/missing.wasm", WASM_IMAGE],
     f"runwasm: {VARIANT}=compat: module /missing.wasm not found in the image"),
    ([*COMPAT, BUSYBOX_IMAGE, "sh"],
     f"runwasm: {VARIANT}=compat: /bin/sh is an ELF executable"),
    (["--annotation", f"{ENGINE}=nope", WASM_IMAGE], f"invalid annotation {ENGINE}='nope'"),
])
def test_failed_create_leaves_nothing(containers: Containers, args: list[str],
                                      message: str) -> None:
    container = name()
    result = containers.podman("run", "--name", container, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    container_id = containers.inspect(container)["Id"]
    bundle = containers.bundle(container_id)
    assert not (bundle / ".runwasm").exists()
    assert ".runwasm" not in (bundle / "config.json").read_text()  # the bundle as it was
    assert not (RUNC_ROOT / container_id).exists()
    must(containers.podman("rm", container))
    assert containers.leftovers(container_id) == []
    # with --rm, podman's own cleanup after the failure leaves nothing either
    again = containers.podman("run", "--rm", "--name", container, *args)
    assert message in again.stderr
    assert container not in must(containers.podman("ps", "-a", "--format", "{{.Names}}"))

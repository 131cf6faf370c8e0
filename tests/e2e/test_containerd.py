"""containerd's runc shim v2 with runwasm as its runc binary (`ctr run --runc-binary`), on
a containerd daemon of our own: Wasm and busybox images run, the shim's --log/--log-format
json are honoured, exec works, and runwasm's errors surface through containerd."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

from e2e_support import (
    BUSYBOX_IMAGE,
    RUNWASM,
    VARIANT,
    WASI_IMAGE,
    WASM_IMAGE,
    Containerd,
    must,
)

RUN = ["run", "--runc-binary", RUNWASM]
COMPAT = ["--annotation", f"{VARIANT}=compat"]


def cid() -> str:
    return "e2e-" + uuid.uuid4().hex[:10]


def runc_state(containerd: Containerd, container: str) -> dict[str, str] | None:
    result = subprocess.run(["runc", "--root", str(containerd.runc_root()), "state", container],
                            capture_output=True, text=True, timeout=60, check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def wait_for_status(containerd: Containerd, container: str, status: str) -> None:
    """Until `ctr task ls` shows the status (bounded; not a timing assertion)."""
    for _ in range(300):
        for line in containerd.ctr("tasks", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == container and fields[-1] == status:
                return
        time.sleep(0.05)
    raise AssertionError(f"{container} never became {status}: {containerd.ctr('tasks', 'ls')}")


def test_wasm_image(containerd: Containerd) -> None:
    result = containerd.ctr(*RUN, "--rm", *COMPAT, "--env", "GREETING=hello from ctr",
                            WASM_IMAGE, cid(), "/hello.wasm", "7", "two words")
    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines() == [
        "Hello from WebAssembly!", "argv[0]=/hello.wasm", "argv[1]=7", "argv[2]=two words",
        "GREETING=hello from ctr"]


def test_engine_annotation(containerd: Containerd) -> None:
    result = containerd.ctr(*RUN, "--rm", "--annotation", "runwasm.io/engine=wasmtime",
                            WASM_IMAGE, cid(), "/tool.wasm", "exit", "12")
    assert result.returncode == 12, result.stderr


def test_wasi_platform_image(containerd: Containerd) -> None:
    result = containerd.ctr(*RUN, "--rm", "--platform", "wasi/wasm", *COMPAT, WASI_IMAGE,
                            cid(), "/app.wasm", "3")
    assert result.returncode == 3, result.stderr
    assert "argv[0]=/app.wasm" in result.stdout


def test_busybox_image(containerd: Containerd) -> None:
    result = containerd.ctr(*RUN, "--rm", BUSYBOX_IMAGE, cid(), "sh", "-c",
                            "echo hello from busybox; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hello from busybox\n"


def test_log_json_and_lifecycle(containerd: Containerd) -> None:
    """The shim's --log FILE --log-format json get runwasm's decision as a JSON line; the
    container is a genuine runc container under the shim's --root; exec and kill work."""
    container = cid()
    must(containerd.ctr(*RUN, "-d", *COMPAT, WASM_IMAGE, container, "/tool.wasm", "sleep",
                        "600"))
    try:
        wait_for_status(containerd, container, "RUNNING")
        records = [json.loads(line) for line in
                   (containerd.task_dir(container) / "log.json").read_text().splitlines()]
        decisions = [r for r in records if r.get("msg", "").startswith("runwasm: wasm: ")]
        assert decisions, records
        assert decisions[0]["level"] == "info"
        assert f"{VARIANT}=compat" in decisions[0]["msg"]
        assert set(decisions[0]) >= {"level", "msg", "time"}
        state = runc_state(containerd, container)
        assert state is not None and state["status"] == "running"
        execd = containerd.ctr("tasks", "exec", "--exec-id", "e1", container, "/tool.wasm",
                               "pwd")
        assert execd.returncode == 0, execd.stderr
        assert execd.stdout == "/\n"
        refused = containerd.ctr("tasks", "exec", "--exec-id", "e2", container, "/bin/sh")
        assert refused.returncode != 0
        assert "/bin/sh is not a WebAssembly module in the image" in refused.stderr
        must(containerd.ctr("tasks", "kill", "--signal", "SIGTERM", container))
        wait_for_status(containerd, container, "STOPPED")
    finally:
        containerd.ctr("tasks", "delete", "--force", container)
        containerd.ctr("containers", "delete", container)
    assert runc_state(containerd, container) is None
    assert not containerd.task_dir(container).exists()


def test_errors_surface_through_containerd(containerd: Containerd) -> None:
    container = cid()
    result = containerd.ctr(*RUN, "--rm", *COMPAT, WASM_IMAGE, container, "/missing.wasm")
    assert result.returncode != 0
    # containerd read runwasm's error from the shim's log.json (--log-format json)
    assert (f"OCI runtime create failed: runwasm: {VARIANT}=compat: module /missing.wasm "
            "not found in the image") in result.stderr
    assert "Traceback" not in result.stderr
    containerd.ctr("containers", "delete", container)
    assert runc_state(containerd, container) is None
    assert container not in containerd.ctr("containers", "ls", "-q").stdout.split()


def test_elf_under_compat_is_refused(containerd: Containerd) -> None:
    container = cid()
    result = containerd.ctr(*RUN, "--rm", *COMPAT, BUSYBOX_IMAGE, container, "sh")
    assert result.returncode != 0
    assert "/bin/sh is an ELF executable" in result.stderr
    containerd.ctr("containers", "delete", container)
    assert runc_state(containerd, container) is None

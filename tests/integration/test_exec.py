"""exec into a Wasm container runs Wasm modules from the image, and nothing else."""

from __future__ import annotations

import json
import time
from pathlib import Path

from integration_support import Runtime, busybox_bundle, wasm_bundle


def _started(runtime: Runtime, bundle: Path) -> str:
    container_id = runtime.new_id()
    created = runtime.create(bundle, container_id)
    assert created.returncode == 0, created.stderr
    assert runtime.runwasm("start", container_id).returncode == 0
    return container_id


def test_exec_wasm_tool(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"],
                                          "/bin/hello.wasm": modules["hello"]},
                         ["/tool.wasm", "sleep", "600"], env=["GREETING=from-spec"])
    container_id = _started(runtime, bundle)
    result = runtime.runwasm("exec", container_id, "/bin/hello.wasm", "9")
    assert result.returncode == 9, result.stderr
    assert "Hello from WebAssembly!" in result.stdout
    assert "GREETING=from-spec" in result.stdout  # the container's env, as runc gives it
    # Through a process file, as CRI-O and conmon do, with its own env and cwd.
    process = json.loads((bundle / ".runwasm" / "config.orig.json").read_text())["process"]
    process.update(args=["tool.wasm", "pwd"], cwd="/", env=["A=1"])
    process_file = tmp_path / "process.json"
    process_file.write_text(json.dumps(process))
    result = runtime.runwasm("exec", "--process", str(process_file), container_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/"
    # The guest sees the container's writes: exec reads what the main guest can see.
    result = runtime.runwasm("exec", "-e", "X=1", container_id, "/tool.wasm", "ls", "/bin")
    assert result.returncode == 0, result.stderr
    assert "hello.wasm" in result.stdout.split()


def test_exec_of_anything_else_is_refused(runtime: Runtime, modules: dict[str, Path],
                                          tmp_path: Path) -> None:
    (tmp_path / "b" / "rootfs").mkdir(parents=True)
    (tmp_path / "b" / "rootfs" / "notes.txt").write_text("text")
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "sleep", "600"])
    container_id = _started(runtime, bundle)
    for command in (["/bin/sh"], ["sh", "-c", "id"], ["/usr/bin/env"], ["/notes.txt"]):
        result = runtime.runwasm("exec", container_id, *command)
        assert result.returncode == 1
        assert "only modules from the image can be executed" in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_exec_in_linux_container_passes_through(runtime: Runtime, tmp_path: Path) -> None:
    bundle = busybox_bundle(tmp_path / "b", ["/bin/sleep", "600"])
    container_id = _started(runtime, bundle)
    time.sleep(0.1)
    result = runtime.runwasm("exec", container_id, "/bin/echo", "from exec")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from exec\n"

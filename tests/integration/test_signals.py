"""SIGTERM / SIGINT end a Wasm guest promptly with 128+signal, even in a tight loop."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from integration_support import RUNWASM, Runtime, wasm_bundle


def _wait_running(runtime: Runtime, container_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = runtime.state(container_id)
        if state is not None and state["status"] == "running":
            return
        time.sleep(0.05)
    raise AssertionError(f"{container_id} never started")


@pytest.mark.parametrize(("module", "args", "signum"), [
    ("spin", ["/m.wasm"], signal.SIGTERM),          # pure wasm loop: epoch interruption
    ("spin", ["/m.wasm"], signal.SIGINT),
    ("tool", ["/m.wasm", "sleep", "600"], signal.SIGTERM),  # blocked in a host call
])
def test_signal_ends_guest_within_a_second(runtime: Runtime, modules: dict[str, Path],
                                           tmp_path: Path, module: str, args: list[str],
                                           signum: int) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/m.wasm": modules[module]}, args)
    container_id = runtime.new_id()
    proc = subprocess.Popen([str(RUNWASM), "--root", str(runtime.root), "run", "--bundle",
                             str(bundle), container_id], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        _wait_running(runtime, container_id)
        time.sleep(0.3)  # let the guest get into its loop or sleep
        sent = time.monotonic()
        assert runtime.runwasm("kill", container_id, str(int(signum))).returncode == 0
        code = proc.wait(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 128 + signum, proc.stderr.read() if proc.stderr else ""
    assert elapsed < 1.0, f"took {elapsed:.2f}s"

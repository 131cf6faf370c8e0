"""Shared pieces of the hostile-input tests: a real bundle (config.json from `runc spec`),
a tree snapshot, and one create attempt in-process against the handler's functions."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import wasmtime

from runwasm.config import NodeConfig
from runwasm.errors import RunwasmError
from runwasm.handler import create
from runwasm.handler.classify import Decision
from runwasm.handler.log import Log
from runwasm.handler.main import MAX_MESSAGE, one_line

# No cache (nothing written outside the bundle), annotations decide.
CONFIG = NodeConfig(path="/nonexistent/runwasm-test.toml", cache_dir="")
SMART = NodeConfig(path="/nonexistent/runwasm-test.toml", cache_dir="", detection="smart")
COMPAT = {"module.wasm.image/variant": "compat"}
MAX_LINE = 400  # what a hostile value may make of a message, at most (MAX_MESSAGE is the cap)

HELLO_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")))"""


def runc_spec() -> dict[str, Any]:
    """The spec `runc spec` writes, as a Wasm container would have it."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(["runc", "spec", "--bundle", directory], check=True)
        spec: dict[str, Any] = json.loads(Path(directory, "config.json").read_text())
    spec["process"]["args"] = ["/app.wasm", "7"]
    spec["process"]["terminal"] = False
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["annotations"] = dict(COMPAT)
    return spec


def write_bundle(directory: Path, spec: dict[str, Any] | bytes,
                 module: bytes | None = None) -> Path:
    """A bundle with `spec` as config.json and (unless None) `module` at /app.wasm."""
    rootfs = directory / "rootfs"
    rootfs.mkdir(parents=True, exist_ok=True)
    if module is not None:
        (rootfs / "app.wasm").write_bytes(module)
    raw = spec if isinstance(spec, bytes) else json.dumps(spec, indent=2).encode()
    (directory / "config.json").write_bytes(raw)
    return directory


def wasm(wat: str = HELLO_WAT) -> bytes:
    return bytes(wasmtime.wat2wasm(wat))


def snapshot(directory: Path) -> dict[str, str]:
    """Every path under `directory` with its kind and a digest of its content."""
    result: dict[str, str] = {}
    for parent, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            path = os.path.join(parent, name)
            rel = os.path.relpath(path, directory)
            st = os.lstat(path)
            if os.path.islink(path):
                result[rel] = "link:" + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    result[rel] = hashlib.sha256(f.read()).hexdigest()
            else:
                result[rel] = f"mode:{st.st_mode:o}"
    return result


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (SIGALRM interrupts a blocking open or read)."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def attempt(bundle: Path, config: NodeConfig = CONFIG, *, root: str = "/nonexistent-root",
            container_id: str = "hostile-test") -> RunwasmError | Decision:
    """One create, in-process: a decision, or the RunwasmError it gave (any other
    exception fails the test). Either way the bundle is left exactly as it was."""
    before = snapshot(bundle)
    with time_limit(10):
        try:
            decision = create.prepare(str(bundle), config, Log(), root=root,
                                      container_id=container_id)
        except RunwasmError as e:
            line = one_line(f"runwasm: {e.message}")
            assert "\n" not in line and len(line) <= MAX_MESSAGE + 3, line[:200]
            assert len(line) <= MAX_LINE + len(str(bundle)), line[:500]
            assert snapshot(bundle) == before, e.message
            return e
    if decision.wasm:
        create.restore(str(bundle))  # what a failed runc create leaves to undo
    assert snapshot(bundle) == before
    return decision


def error_of(bundle: Path, config: NodeConfig = CONFIG, **kwargs: Any) -> str:
    result = attempt(bundle, config, **kwargs)
    assert isinstance(result, RunwasmError), f"accepted: {result.reason}"
    return result.message

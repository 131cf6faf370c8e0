"""Fixtures for tests that drive .venv/bin/runwasm on real runc, as root."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit import bundles

RUNWASM = bundles.REPO / ".venv" / "bin" / "runwasm"
RUNC = shutil.which("runc") or "/usr/sbin/runc"

WAT_EXIT_42 = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 42))))"""
WAT_TRAP = """(module (memory (export "memory") 1)
  (func (export "_start") unreachable))"""
WAT_SPIN = """(module (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"""
WAT_REACTOR = """(module (memory (export "memory") 1)
  (func (export "_initialize")) (func (export "run")))"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="integration tests need root"))


@pytest.fixture(scope="session")
def modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test module, built once: C through clang, WAT through wasmtime."""
    out = tmp_path_factory.mktemp("modules")
    built = {
        "hello": bundles.c_module(bundles.MODULE_SOURCES / "hello.c", out / "hello.wasm"),
        "tool": bundles.c_module(bundles.MODULE_SOURCES / "tool.c", out / "tool.wasm"),
        "exit42": bundles.wat_module(WAT_EXIT_42, out / "exit42.wasm"),
        "trap": bundles.wat_module(WAT_TRAP, out / "trap.wasm"),
        "spin": bundles.wat_module(WAT_SPIN, out / "spin.wasm"),
        "reactor": bundles.wat_module(WAT_REACTOR, out / "reactor.wasm"),
    }
    truncated = out / "truncated.wasm"
    truncated.write_bytes(built["hello"].read_bytes()[:-100])
    built["truncated"] = truncated
    return built


class Runtime:
    """runwasm (and runc) on a private --root, deleting what the test created."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids: list[str] = []

    def new_id(self) -> str:
        container_id = "t-" + uuid.uuid4().hex[:12]
        self.ids.append(container_id)
        return container_id

    def runwasm(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self._run(str(RUNWASM), args, kwargs)

    def runc(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self._run(RUNC, args, kwargs)

    def _run(self, binary: str, args: tuple[str, ...], kwargs: dict[str, Any]
             ) -> subprocess.CompletedProcess[str]:
        if "stdout" not in kwargs and "stderr" not in kwargs:
            kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run([binary, "--root", str(self.root), *args], check=False, **kwargs)

    def create(self, bundle: Path, container_id: str, *extra: str
               ) -> subprocess.CompletedProcess[str]:
        """`runwasm create`, the container's stdio to files (a pipe would stay open)."""
        out = bundle / f"{container_id}.out"
        with open(out, "w") as stdout, open(bundle / f"{container_id}.err", "w") as stderr:
            result = self.runwasm("create", "--bundle", str(bundle), *extra, container_id,
                                  stdout=stdout, stderr=stderr)
        result.stderr = (bundle / f"{container_id}.err").read_text()
        return result

    def state(self, container_id: str) -> dict[str, Any] | None:
        import json

        result = self.runc("state", container_id)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def listed(self) -> list[str]:
        import json

        result = self.runc("list", "--format", "json")
        return [c["id"] for c in json.loads(result.stdout or "null") or []]

    def cleanup(self) -> None:
        for container_id in self.ids:
            self.runc("delete", "--force", container_id)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    root = Path("/run/runwasm-tests") / uuid.uuid4().hex[:8]
    root.mkdir(parents=True)
    rt = Runtime(root)
    try:
        yield rt
    finally:
        rt.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def wasm_bundle(directory: Path, files: dict[str, Path], args: list[str],
                annotations: dict[str, str] | None = None, **kwargs: Any) -> Path:
    bundles.wasm_rootfs(directory / "rootfs", files)
    return bundles.bundle(directory, args=args, annotations=annotations
                          if annotations is not None
                          else {"module.wasm.image/variant": "compat"}, **kwargs)


def busybox_bundle(directory: Path, args: list[str], **kwargs: Any) -> Path:
    bundles.busybox_rootfs(directory / "rootfs")
    return bundles.bundle(directory, args=args, **kwargs)


def snapshot(directory: Path) -> dict[str, str]:
    """Every path under `directory` with a digest of its content or link target."""
    result: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        rel = str(path.relative_to(directory))
        if path.is_symlink():
            result[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            result[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            result[rel] = "dir"
    return result


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]

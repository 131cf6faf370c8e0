"""Fixtures for tests that drive .venv/bin/runwasm on real runc, as root."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import Runtime

from devkit import bundles

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



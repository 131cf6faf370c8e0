"""Session fixtures for the end-to-end tests: images built once with buildah, a private
podman store, and a containerd daemon of our own (started on first use, stopped after)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    BUSYBOX_IMAGE,
    RUNWASM,
    WASI_IMAGE,
    WASM_IMAGE,
    Containerd,
    Containers,
    missing_tools,
)

from devkit import bundles


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.e2e)
        if os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="end-to-end tests need root"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives real podman/conmon/buildah/containerd")


@pytest.fixture(scope="session")
def tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/setup.sh (make setup)")
    if not os.access(RUNWASM, os.X_OK):
        pytest.fail(f"{RUNWASM} is missing: run scripts/setup.sh (make setup)")


@pytest.fixture(scope="session")
def wasm_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("e2e-modules")
    return {name: bundles.c_module(bundles.MODULE_SOURCES / f"{name}.c", out / f"{name}.wasm")
            for name in ("hello", "tool")}


@pytest.fixture(scope="session")
def containers(tools: None, tmp_path_factory: pytest.TempPathFactory,
               wasm_modules: dict[str, Path]) -> Iterator[Containers]:
    """A private podman/buildah store with the three test images in it."""
    base = tmp_path_factory.mktemp("e2e-podman")
    store = Containers(base)
    store.commit_scratch(WASM_IMAGE, {"/hello.wasm": wasm_modules["hello"],
                                      "/tool.wasm": wasm_modules["tool"]},
                         config=["--entrypoint", '["/hello.wasm"]'])
    store.build_platform_image(WASI_IMAGE, wasm_modules["hello"], base / "wasi-context")
    rootfs = bundles.busybox_rootfs(base / "busybox-rootfs")
    store.commit_scratch(BUSYBOX_IMAGE, {"/": rootfs}, config=["--cmd", '["/bin/sh"]'])
    try:
        yield store
    finally:
        store.podman("pod", "rm", "--all", "--force", "--time", "0")
        store.podman("rm", "--all", "--force", "--time", "0")


@pytest.fixture(scope="session")
def containerd(containers: Containers, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Containerd]:
    """Our own containerd, holding the same images (imported from buildah's store)."""
    base = tmp_path_factory.mktemp("e2e-containerd")
    daemon = Containerd(base)
    daemon.start()
    try:
        for name, platform in ((WASM_IMAGE, ""), (BUSYBOX_IMAGE, ""),
                               (WASI_IMAGE, "wasi/wasm")):
            archive = containers.export(name, base / (name.split("/")[-1].split(":")[0]
                                                      + ".tar"))
            daemon.import_image(archive, name, platform)
        yield daemon
    finally:
        daemon.stop()

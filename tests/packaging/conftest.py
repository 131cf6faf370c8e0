"""Fixtures for the package tests: both packages built once, a cached Debian 12 root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import debroot
import pytest
from pkgtest import REPO, Packages, RootFactory

BUILD = REPO / "packaging" / "build.py"
TOOLS = {"dpkg-deb": "dpkg", "rpm": "rpm", "lintian": "lintian",
         "debootstrap": "debootstrap", "unshare": "util-linux", "zstd": "zstd"}

_timings: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/packaging/" in str(item.fspath) and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="package tests need root"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _timings:
        terminalreporter.write_line("packaging: " + "; ".join(_timings))


@pytest.fixture(scope="session")
def tools() -> None:
    missing = [f"{tool} ({package})" for tool, package in TOOLS.items()
               if shutil.which(tool) is None]
    if missing:
        pytest.fail("missing " + ", ".join(missing) + ": run scripts/setup.sh")


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory, tools: None) -> Packages:
    """Both packages, built by packaging/build.py as `make packages` does."""
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(BUILD), "--out", str(out), "--work",
                             str(out / "work")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    _timings.append(f"both packages built in {time.monotonic() - started:.1f} s")
    shutil.rmtree(out / "work")
    sys.path.insert(0, str(REPO))
    from runwasm import __version__

    deb = out / f"runwasm_{__version__}_amd64.deb"
    rpm = out / f"runwasm-{__version__}.x86_64.rpm"
    assert result.stdout.split() == [str(deb), str(rpm)]
    return Packages(__version__, deb, rpm)


@pytest.fixture(scope="session")
def unpacked(packages: Packages, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The .deb's files (`dpkg-deb -x`), once per session; removed afterwards."""
    root = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["dpkg-deb", "-x", str(packages.deb), str(root)], check=True)
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="session")
def root_tarball(tools: None) -> Path:
    """The cached Debian 12 minbase root (python3, runc); made on the first run."""
    started = time.monotonic()
    try:
        tarball, how = debroot.ensure_tarball()
    except debroot.MirrorUnreachable as e:
        pytest.skip(str(e))
    _timings.append(f"Debian root {how} ({time.monotonic() - started:.1f} s)")
    return tarball


@pytest.fixture
def new_root(root_tarball: Path, tmp_path: Path) -> Iterator[RootFactory]:
    """Unpack fresh copies of the Debian root; removed afterwards."""
    made: list[Path] = []

    def make(name: str) -> Path:
        root = debroot.unpack(root_tarball, tmp_path / name)
        made.append(root)
        return root

    yield make
    for root in made:
        debroot.remove_root(root)

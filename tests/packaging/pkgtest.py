"""What the package tests share: the repository, the built packages, a command runner."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Files only the .deb has (Debian's changelog, lintian's overrides).
DEB_ONLY = {"/usr/share/doc/runwasm/changelog.gz", "/usr/share/lintian/overrides/runwasm"}

# new_root(name): a fresh copy of the cached Debian 12 root, removed after the test.
RootFactory = Callable[[str], Path]


@dataclass(frozen=True)
class Packages:
    version: str
    deb: Path
    rpm: Path


def sh(*cmd: str) -> str:
    """A command's stdout; the test fails with its stderr when it fails."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)}: {result.stderr}"
    return result.stdout


def deb_entries(deb: Path) -> dict[str, tuple[str, str]]:
    """path -> (permissions, owner/group) for every entry of the .deb's data."""
    entries = {}
    for line in sh("dpkg-deb", "-c", str(deb)).splitlines():
        perms, owner, _size, _date, _time, name = line.split(None, 5)
        path = name.split(" -> ")[0].lstrip(".").rstrip("/") or "/"
        entries[path] = (perms, owner)
    return entries


def rpm_entries(rpm: Path) -> dict[str, tuple[str, str]]:
    entries = {}
    out = sh("rpm", "-qp", "--qf",
             "[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILENAMES}\n]", str(rpm))
    for line in out.splitlines():
        perms, owner, path = line.split(None, 2)
        entries[path] = (perms, owner)
    return entries

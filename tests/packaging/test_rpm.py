"""The .rpm installed with `rpm -i --nodeps --root` into a scratch root.

The scratch root is a fresh copy of the clean Debian 12 root: it has /bin/sh and
python3, so the scriptlets really run (rpm chroots into the root for them), and the
installed runwasm can be run there. Its files must land exactly where the .deb's do.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import debroot
from pkgtest import DEB_ONLY, Packages, RootFactory, deb_entries, sh

# rpm on Debian keeps its database in ~/.rpmdb, i.e. /root/.rpmdb inside --root.
RPM_NOT_COMPARED = (*debroot.NOT_COMPARED, "/root/.rpmdb", "/var/lib/rpm", "/usr/lib/sysimage/rpm")


def rpm(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rpm", "--root", str(root), *args], capture_output=True,
                          text=True, check=False, timeout=300)


def test_rpm_installs_where_the_deb_does_and_erases_cleanly(
        packages: Packages, new_root: RootFactory) -> None:
    root = new_root("rpm")
    before = debroot.tree(root, RPM_NOT_COMPARED)

    installed = rpm(root, "-i", "--nodeps", str(packages.rpm))
    assert installed.returncode == 0, installed.stderr
    listed = set(rpm(root, "-ql", "runwasm").stdout.split())
    deb = deb_entries(packages.deb)
    deb_files = {p for p, (perms, _) in deb.items() if not perms.startswith("d")}
    assert deb_files - listed == DEB_ONLY
    for path in listed:
        on_disk = root / path.lstrip("/")
        assert on_disk.exists(), path
        if path in deb:
            assert stat.filemode(on_disk.lstat().st_mode) == deb[path][0], path
        assert (on_disk.lstat().st_uid, on_disk.lstat().st_gid) == (0, 0), path
    configs = set(rpm(root, "-qc", "runwasm").stdout.split())
    assert configs == {p for p in listed if p.startswith("/etc/") and
                       not stat.S_ISDIR((root / p.lstrip("/")).lstat().st_mode)}

    # %post made the root-only directories, %posttrans compiled the tree.
    for directory in (root / "var/lib/runwasm", root / "var/lib/runwasm/cache"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert list((root / "usr/lib/runwasm/runwasm/handler/__pycache__").glob("main.*.pyc"))
    version = debroot.in_root(root, "runwasm", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines()[0] == f"runwasm version {packages.version}"

    erased = rpm(root, "-e", "runwasm")
    assert erased.returncode == 0, erased.stderr
    after = debroot.tree(root, RPM_NOT_COMPARED)
    assert sorted(after - before) == [], "left behind by the .rpm"
    assert sorted(before - after) == [], "removed by the .rpm"


def test_rpm_into_an_empty_root_without_scriptlets(packages: Packages, tmp_path: Path) -> None:
    """The bare file placement, with nothing but rpm's own database in the root."""
    root = tmp_path / "empty"
    root.mkdir()
    installed = rpm(root, "-i", "--nodeps", "--noscripts", str(packages.rpm))
    assert installed.returncode == 0, installed.stderr
    files = {"/" + str(p.relative_to(root)) for p in root.rglob("*")
             if not p.is_dir() and not str(p.relative_to(root)).startswith("root/.rpmdb")}
    deb_files = {p for p, (perms, _) in deb_entries(packages.deb).items()
                 if not perms.startswith("d")}
    assert files == deb_files - DEB_ONLY
    assert os.access(root / "usr/bin/runwasm", os.X_OK)
    assert not (root / "var/lib/runwasm").exists()  # made by %post, skipped here
    sh("rpm", "--root", str(root), "-V", "--nodeps", "runwasm")
    shutil.rmtree(root)

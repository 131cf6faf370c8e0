"""Install, reinstall over an edited config, remove and purge the .deb in a clean Debian
12 root, with a Wasm container running throughout: the config survives, the container
is left alone, and purge leaves nothing of runwasm behind."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import debroot
from pkgtest import REPO, Packages, RootFactory

RUNC_ROOT = "/run/runwasm-pkgtests"
RUNWASM_PATHS = ("/usr/bin/runwasm", "/usr/lib/runwasm", "/usr/share/runwasm",
                 "/usr/share/doc/runwasm", "/usr/share/man/man1/runwasm.1.gz",
                 "/usr/share/lintian/overrides/runwasm")


def state(root: Path, container_id: str) -> str:
    result = debroot.in_root(root, "runc", "--root", RUNC_ROOT, "state", container_id)
    return str(json.loads(result.stdout)["status"]) if result.returncode == 0 else "absent"


def start_sleeping_container(root: Path) -> str:
    """A Wasm guest sleeping for a minute, started detached through runwasm."""
    sys.path.insert(0, str(REPO))
    from devkit import bundles

    module = bundles.c_module(bundles.MODULE_SOURCES / "tool.c",
                              root.parent / "modules" / "tool.wasm")
    directory = root / "srv" / "sleeper"
    bundles.wasm_rootfs(directory / "rootfs", {"/tool.wasm": module})
    bundles.bundle(directory, args=["/tool.wasm", "sleep", "60"],
                   annotations={"module.wasm.image/variant": "compat"})
    container_id = "pkg-" + uuid.uuid4().hex[:10]
    with open(directory / "out", "w") as out, open(directory / "err", "w") as err:
        result = debroot.in_root(root, "runwasm", "--root", RUNC_ROOT, "run", "--detach",
                                 "--bundle", "/srv/sleeper", container_id, stdout=out,
                                 stderr=err)
    assert result.returncode == 0, (directory / "err").read_text()
    deadline = time.monotonic() + 10
    while "sleeping" not in (directory / "out").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (directory / "out").read_text() == "sleeping\n"
    assert state(root, container_id) == "running"
    return container_id


def test_remove_and_purge(packages: Packages, new_root: RootFactory) -> None:
    root = new_root("lifecycle")
    before = debroot.tree(root, debroot.NOT_COMPARED)

    first = debroot.install_deb(root, packages.deb)
    assert first.returncode == 0, first.stdout + first.stderr
    config = root / "etc/runwasm/config.toml"
    edited = config.read_text() + "\n# edited by the node operator\n"
    config.write_text(edited)

    # Reinstalling (prerm upgrade, unpack, postinst configure) keeps the edited
    # conffile without asking, and compiles the tree again.
    again = debroot.install_deb(root, packages.deb)
    assert again.returncode == 0, again.stdout + again.stderr
    assert config.read_text() == edited
    assert list((root / "usr/lib/runwasm/runwasm/handler/__pycache__").glob("main.*.pyc"))

    container_id = start_sleeping_container(root)
    try:
        removed = debroot.in_root(root, "dpkg", "--remove", "runwasm")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        for path in RUNWASM_PATHS:
            assert not (root / path.lstrip("/")).exists(), path
        # remove keeps the configuration (edited), the CRI-O drop-in and the cache.
        assert config.read_text() == edited
        assert list((root / "etc/crio/crio.conf.d").glob("*.conf"))
        assert (root / "var/lib/runwasm/cache").is_dir()
        assert state(root, container_id) == "running"

        purged = debroot.in_root(root, "dpkg", "--purge", "runwasm")
        assert purged.returncode == 0, purged.stdout + purged.stderr
        assert state(root, container_id) == "running"
        assert debroot.in_root(root, "dpkg-query", "-W", "runwasm").returncode != 0

        after = debroot.tree(root, debroot.NOT_COMPARED)
        assert sorted(after - before) == [], "left behind by runwasm"
        assert sorted(before - after) == [], "removed by runwasm"
    finally:
        # The container outlived its runtime's package: runc alone stops and deletes it.
        debroot.in_root(root, "runc", "--root", RUNC_ROOT, "kill", container_id, "TERM")
        deadline = time.monotonic() + 10
        while state(root, container_id) == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state(root, container_id) == "stopped"
        debroot.in_root(root, "runc", "--root", RUNC_ROOT, "delete", container_id)
        assert state(root, container_id) == "absent"

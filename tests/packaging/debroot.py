"""A clean Debian 12 root for the package tests: made once with debootstrap, cached.

The root is `debootstrap --variant=minbase --include=python3,runc bookworm` from the
mirror apt is configured with, kept as a tarball under CACHE_DIR; each test that needs
a root unpacks a fresh copy (about a second). Commands run in it through `in_root`:
a private mount namespace (so nothing is left mounted on the host, whatever happens)
with /proc, /sys and /dev mounted in the root, then chroot.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CACHE_DIR = Path(os.environ.get("RUNWASM_TEST_CACHE", "/var/cache/runwasm-tests"))
SUITE = "bookworm"
INCLUDE = ("python3", "runc")
TARBALL = CACHE_DIR / f"debian12-minbase-{'-'.join(INCLUDE)}.tar.zst"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What dpkg, the tests and the kernel change in a root besides a package's own files.
NOT_COMPARED = ("/proc", "/sys", "/dev", "/run", "/tmp", "/srv", "/var/lib/dpkg",
                "/var/log", "/var/cache/debconf")

# Make the root a mount point (pivot_root in runc needs one), give it /proc, /sys and
# /dev, then chroot. Runs inside `unshare --mount`, so all of it ends with the command.
_ENTER = """set -e
root=$1; shift
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
exec chroot "$root" "$@"
"""


def apt_mirror() -> str:
    """The Debian mirror apt uses for bookworm (RUNWASM_TEST_MIRROR overrides)."""
    override = os.environ.get("RUNWASM_TEST_MIRROR")
    if override:
        return override
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob(
        "*.list")), *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith(("#", " ")):
                        key, value = line.split(":", 1)
                        fields[key.strip().lower()] = value.strip()
                if "deb" in fields.get("types", "").split() and SUITE in fields.get(
                        "suites", "").split():
                    for uri in fields.get("uris", "").split():
                        if uri.rstrip("/").endswith("/debian"):
                            return uri.rstrip("/")
        else:
            for line in text.splitlines():
                words = [w for w in line.split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE and words[
                        1].rstrip("/").endswith("/debian"):
                    return words[1].rstrip("/")
    return DEFAULT_MIRROR


def mirror_unreachable(mirror: str) -> str | None:
    """Why the mirror cannot be used, or None when its Release file answers."""
    url = f"{mirror}/dists/{SUITE}/Release"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read(64)
    except Exception as e:  # noqa: BLE001 - any failure means: cannot reach it
        return f"{url}: {e}"
    return None


def ensure_tarball() -> tuple[Path, str]:
    """The cached root tarball, made with debootstrap if missing; how it was had."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if TARBALL.exists():
            return TARBALL, "cached"
        mirror = apt_mirror()
        reason = mirror_unreachable(mirror)
        if reason:
            raise MirrorUnreachable(f"debootstrap cannot reach Debian's mirror: {reason}")
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE_DIR))
        try:
            target = work / "root"
            result = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "debootstrap",
                 "--variant=minbase", "--include=" + ",".join(INCLUDE), SUITE, str(target),
                 mirror], capture_output=True, text=True, timeout=1800, check=False)
            if result.returncode != 0:
                tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
                raise RuntimeError("debootstrap failed: " + " | ".join(tail))
            for deb in (target / "var" / "cache" / "apt" / "archives").glob("*.deb"):
                deb.unlink()
            partial = work / TARBALL.name
            subprocess.run(["tar", "--zstd", "-C", str(target), "-cf", str(partial), "."],
                           check=True, capture_output=True)
            os.replace(partial, TARBALL)
        finally:
            remove_root(work)
        return TARBALL, f"made with debootstrap from {mirror} in {time.monotonic() - started:.0f} s"


class MirrorUnreachable(Exception):
    pass


def unpack(tarball: Path, directory: Path) -> Path:
    directory.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "-C", str(directory), "-xf", str(tarball)], check=True,
                   capture_output=True)
    return directory


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f
                if (line.split()[4] + "/").startswith(prefix)]


def remove_root(path: Path) -> None:
    """Delete a root, never while anything is mounted under it."""
    if not path.exists():
        return
    mounted = mounts_under(path)
    if mounted:
        raise RuntimeError(f"not removing {path}: still mounted: {', '.join(mounted)}")
    shutil.rmtree(path)


def in_root(root: Path, *command: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command chrooted into root, with /proc, /sys and /dev, in a private mount
    namespace; stdout/stderr captured, stdin closed."""
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 120)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER, "sh",
         str(root), *command], env=env, check=False, **kwargs)


def tree(root: Path, skip: tuple[str, ...]) -> set[str]:
    """Every path under root (as seen inside it), except under the skipped prefixes."""
    paths: set[str] = set()
    for directory, dirs, files in os.walk(root):
        inside = "/" + os.path.relpath(directory, root).lstrip(".").lstrip("/")
        dirs[:] = [d for d in dirs if not (inside.rstrip("/") + "/" + d).startswith(skip)]
        for name in [*dirs, *files]:
            path = inside.rstrip("/") + "/" + name
            if not path.startswith(skip):
                paths.add(path)
    return paths


def install_deb(root: Path, deb: Path) -> subprocess.CompletedProcess[str]:
    """`dpkg -i` the package inside root."""
    shutil.copy2(deb, root / "tmp" / deb.name)
    return in_root(root, "dpkg", "-i", "/tmp/" + deb.name)

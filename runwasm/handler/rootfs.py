"""Paths inside a container's rootfs, resolved as the container would see them.

Symlinks are followed relative to the rootfs, never out of it (like runc's securejoin).
"""

from __future__ import annotations

import os
import stat

from runwasm.errors import RunwasmError
from runwasm.files import EINVAL, file_kind

_MAX_LINKS = 255
_PATH_MAX = 4096  # the kernel's limit: no longer path names a file
_MAX_LOOKUPS = 1 << 14  # bounds the work a hostile image can cause (links within links)


def resolve(rootfs: str, path: str, cwd: str = "/") -> str:
    """The host path for container path `path` (relative to `cwd`), inside `rootfs`.

    OSError for a path longer than PATH_MAX, a symlink loop, or too many lookups.
    """
    if not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    if len(path) >= _PATH_MAX or len(path.encode("utf-8", "surrogateescape")) >= _PATH_MAX:
        raise OSError(36, "file name too long")
    parts = [p for p in reversed(path.split("/")) if p]  # a stack: the next part last
    done: list[str] = []
    links = lookups = 0
    missing_at = -1  # index in `done` of the first part that does not exist, if any
    while parts:
        part = parts.pop()
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            if len(done) <= missing_at:
                missing_at = -1  # back above what is missing: look parts up again
            continue
        if missing_at >= 0:  # below a missing directory nothing exists: no lookups
            done.append(part)
            continue
        lookups += 1
        if lookups > _MAX_LOOKUPS:
            raise OSError(40, "too many levels of symbolic links")
        host = os.path.join(rootfs, *done, part)
        try:
            st = os.lstat(host)
        except OSError:
            missing_at = len(done)
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise OSError(40, "too many levels of symbolic links")
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts.extend(p for p in reversed(target.split("/")) if p)
            continue
        done.append(part)
    return os.path.join(rootfs, *done)


def _program(rootfs: str, path: str) -> str | None:
    """`path` if it names a regular file in the image, None if nothing is there; OSError
    for anything else there (a directory, FIFO, device, socket) or a symlink loop."""
    try:
        mode = os.lstat(resolve(rootfs, path)).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(mode):
        raise OSError(EINVAL, f"{path} is {file_kind(mode)}, not a regular file")
    return path


def check_root(rootfs: str) -> None:
    """A clear error when the bundle's root.path is not a directory (before looking in it)."""
    try:
        mode = os.stat(rootfs).st_mode
    except OSError as e:
        raise RunwasmError(f"root.path {rootfs}: {e.strerror}") from None
    if not stat.S_ISDIR(mode):
        raise RunwasmError(f"root.path {rootfs}: not a directory")


def find_program(rootfs: str, arg0: str, cwd: str, env: list[str]) -> str | None:
    """Container path of the entrypoint, searching PATH for bare names as runc does.

    None when there is none; OSError when the path names something that is not a
    regular file; RunwasmError when the rootfs itself is missing.
    """
    check_root(rootfs)
    if "/" in arg0:
        full = arg0 if arg0.startswith("/") else os.path.normpath(os.path.join(cwd, arg0))
        return _program(rootfs, full)
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for entry in env:
        if entry.startswith("PATH="):
            search = entry[5:]
    for directory in search.split(":"):
        candidate = os.path.join(directory or cwd, arg0)
        if not candidate.startswith("/"):
            candidate = os.path.join(cwd, candidate)
        try:
            if _program(rootfs, candidate) is not None:  # like exec.LookPath, skip the rest
                return os.path.normpath(candidate)
        except OSError:
            continue
    # Wasm images often name the module relative to the working directory.
    return _program(rootfs, os.path.normpath(os.path.join(cwd, arg0)))

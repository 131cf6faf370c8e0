"""Paths inside a container's rootfs, resolved as the container would see them.

Symlinks are followed relative to the rootfs, never out of it (like runc's securejoin).
"""

from __future__ import annotations

import os
import stat

_MAX_LINKS = 255


def resolve(rootfs: str, path: str, cwd: str = "/") -> str:
    """The host path for container path `path` (relative to `cwd`), inside `rootfs`."""
    if not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(rootfs, *done, part)
        try:
            st = os.lstat(host)
        except OSError:
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise OSError(40, "too many levels of symbolic links", path)
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        done.append(part)
    return os.path.join(rootfs, *done)


def find_program(rootfs: str, arg0: str, cwd: str, env: list[str]) -> str | None:
    """Container path of the entrypoint, searching PATH for bare names as runc does."""
    if "/" in arg0:
        full = arg0 if arg0.startswith("/") else os.path.normpath(os.path.join(cwd, arg0))
        return full if os.path.isfile(resolve(rootfs, full)) else None
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for entry in env:
        if entry.startswith("PATH="):
            search = entry[5:]
    for directory in search.split(":"):
        candidate = os.path.join(directory or cwd, arg0)
        if not candidate.startswith("/"):
            candidate = os.path.join(cwd, candidate)
        if os.path.isfile(resolve(rootfs, candidate)):
            return os.path.normpath(candidate)
    # Wasm images often name the module relative to the working directory.
    relative = os.path.normpath(os.path.join(cwd, arg0))
    return relative if os.path.isfile(resolve(rootfs, relative)) else None

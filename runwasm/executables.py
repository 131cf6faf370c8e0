"""Find executables the way a shell would, without `shutil` (costly to import)."""

from __future__ import annotations

import os

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def search(name: str) -> str | None:
    """`name` as a path (if it has a slash) or the first match on PATH."""
    if "/" in name:
        return os.path.abspath(name) if is_executable(name) else None
    for directory in (os.environ.get("PATH") or _DEFAULT_PATH).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if is_executable(candidate):
            return candidate
    return None

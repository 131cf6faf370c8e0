"""Build small root filesystems for the unit tests."""

from __future__ import annotations

import os
from pathlib import Path


def put(root: Path, path: str, data: bytes = b"x") -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def link(root: Path, path: str, to: str) -> Path:
    where = root / path.lstrip("/")
    where.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(to, where)
    return where

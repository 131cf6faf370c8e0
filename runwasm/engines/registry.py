"""Find and load an engine adapter by name (launcher side)."""

from __future__ import annotations

import importlib

from runwasm.engines import BUILTIN
from runwasm.engines.base import Engine, EngineError


def load(name: str) -> Engine:
    """The adapter for `name`; only its own module (and engine) is imported."""
    module_name = BUILTIN.get(name)
    if module_name is None:
        raise EngineError(f"engine {name!r} is not available in this runwasm")
    engine: Engine = importlib.import_module(module_name).ADAPTER
    return engine


def describe_all(config: object) -> list[dict[str, object]]:
    """One row per known engine, for `runwasm engines`."""
    rows: list[dict[str, object]] = []
    for name in BUILTIN:
        try:
            load(name)
            installed, version = True, _version(name)
        except (EngineError, ImportError):
            installed, version = False, ""
        rows.append({"name": name, "installed": installed, "version": version,
                     "path": "", "capabilities": ["wasi-p1"]})
    return rows


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""

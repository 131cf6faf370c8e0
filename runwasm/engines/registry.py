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

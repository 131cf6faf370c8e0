"""Find engine adapters by name: built-ins directly, others through the entry-point group
`runwasm.engines` (`name = "package.module:AdapterClass"`)."""

from __future__ import annotations

import sys

from runwasm.engines import BUILTIN, GROUP
from runwasm.engines.base import Engine, EngineError, EngineSettings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    found = entry_points()
    if hasattr(found, "select"):
        selected = found.select(group=GROUP)
    else:  # Python 3.9: a dict of group -> entry points
        selected = found.get(GROUP, ())  # type: ignore[arg-type]
    return {ep.name: ep for ep in selected}


def names() -> list[str]:
    """Every engine name: built-ins first, then third-party adapters."""
    return [*BUILTIN, *(n for n in sorted(_entry_points()) if n not in BUILTIN)]


def adapter_class(name: str) -> type[Engine]:
    module_name = BUILTIN.get(name)
    if module_name is not None:
        __import__(module_name)  # not importlib: the launcher spares its import
        cls: type[Engine] = sys.modules[module_name].ADAPTER
        return cls
    ep = _entry_points().get(name)
    if ep is None:
        raise EngineError(f"unknown engine {name!r} (known: {', '.join(names())})")
    try:
        loaded = ep.load()
    except Exception as e:  # a broken third-party package: say which
        raise EngineError(f"engine {name}: cannot load {ep.value}: {e}") from None
    if not (isinstance(loaded, type) and issubclass(loaded, Engine)):
        raise EngineError(f"engine {name}: {ep.value} is not a runwasm Engine adapter")
    return loaded


def load(name: str) -> Engine:
    """A fresh adapter for `name`; only its own module is imported (not its engine)."""
    return adapter_class(name)()


def settings_for(tables: dict[str, dict[str, Any]], name: str) -> EngineSettings:
    """EngineSettings from the node config's [engines.<name>] table."""
    table = tables.get(name, {})
    return EngineSettings(path=table.get("path", ""), options=tuple(table.get("options", ())),
                          python=table.get("python", ""))


def describe_all(tables: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per known engine, for `runwasm engines`."""
    rows: list[dict[str, Any]] = []
    for name in names():
        row: dict[str, Any] = {"name": name, "installed": False, "version": "",
                                  "path": "", "capabilities": [], "problem": ""}
        try:
            adapter = load(name)
            engine_settings = settings_for(tables, name)
            installation = adapter.locate(engine_settings)
            row.update(installed=True, version=adapter.version(engine_settings),
                       path=installation.executable or installation.interpreter
                       or (installation.import_paths[0] if installation.import_paths else ""),
                       capabilities=sorted(adapter.supported(installation)))
        except EngineError as e:
            row["problem"] = str(e)
            try:
                row["capabilities"] = sorted(adapter_class(name).capabilities)
            except EngineError:
                pass
        rows.append(row)
    return rows

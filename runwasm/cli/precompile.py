"""`runwasm precompile PATH...`: warm the cache ahead of time (e.g. a node-prep job)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("precompile", help="Compile modules into the node's cache ahead of time, "
                "for the engine their containers will use.")(precompile)


def precompile(
    paths: list[Path] = typer.Argument(..., help="Wasm modules (.wasm or .wat)."),
    engine: str = typer.Option("", "--engine", help="Engine (default: wasm.default_engine)."),
    fuel: bool = typer.Option(False, "--fuel",
                              help="For containers that set runwasm.io/fuel (other code)."),
) -> None:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from runwasm import config as node_config
    from runwasm.cache import Cache
    from runwasm.engines import base, registry
    from runwasm.errors import RunwasmError
    from runwasm.plan import Limits

    config = node_config.load()
    name = engine or config.default_engine
    try:
        adapter = registry.load(name)
        installation = adapter.locate(registry.settings_for(config.engines, name))
    except base.EngineError as e:
        typer.echo(f"runwasm: {e}", err=True)
        raise typer.Exit(1) from None
    if base.PRECOMPILE not in adapter.supported(installation):
        typer.echo(f"runwasm: engine {name} cannot use the cache", err=True)
        raise typer.Exit(1)
    cache = Cache(config)
    limits = Limits(fuel=1 if fuel else None)
    failed = 0
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(f"precompiling for {name}", total=len(paths))
        for path in paths:
            progress.update(task, description=f"{name}: {path.name}")
            try:
                found = cache.artifact_for(adapter, installation, str(path.resolve()),
                                           str(path), limits)
                state = "compiled" if found and found[1] else "already cached"
                progress.console.print(f"{path}: {state}", soft_wrap=True)
            except (RunwasmError, OSError) as e:
                failed += 1
                progress.console.print(f"{path}: [red]failed[/red]: {e}", soft_wrap=True)
            progress.advance(task)
    if failed:
        raise typer.Exit(1)

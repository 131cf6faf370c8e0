"""`runwasm cache ls|prune|clear`: the node's precompiled-module cache."""

from __future__ import annotations

import json
import time

import typer

cache_app = typer.Typer(help="Inspect and trim the precompiled-module cache.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")


def _cache() -> object:
    from runwasm import config as node_config
    from runwasm.cache import Cache

    return Cache(node_config.load())


@cache_app.command("ls", help="List entries, least recently used first.")
def ls(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    from runwasm.cache import Cache

    cache = _cache()
    assert isinstance(cache, Cache)
    rows = [{"key": entry.key, "source": meta.get("source", ""), "engine": meta.get("engine"),
             "build": meta.get("build"), "size": meta.get("size", 0),
             "compile_seconds": meta.get("compile_seconds"),
             "last_used": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(used))}
            for entry, meta, used in cache.entries()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("key", "module", "engine", "size", "compile", "last used",
                  title=f"{cache.directory}: {len(rows)} entries, "
                        f"{_size(sum(r['size'] for r in rows))} of {_size(cache.max_size)}")
    for r in rows:
        table.add_row(r["key"][:12], r["source"], str(r["engine"]), _size(r["size"]),
                      f"{r['compile_seconds']}s", r["last_used"])
    Console().print(table)


@cache_app.command("prune", help="Remove least-recently-used entries until the cache fits.")
def prune(max_size: str = typer.Option("", "--max-size",
                                       help="Budget to prune to (default: cache.max_size).")
          ) -> None:
    from runwasm.cache import Cache
    from runwasm.errors import RunwasmError
    from runwasm.limits import parse_quantity

    cache = _cache()
    assert isinstance(cache, Cache)
    try:
        budget = parse_quantity("--max-size", max_size, allow_zero=True) if max_size \
            else None
    except RunwasmError as e:
        typer.echo(f"runwasm: {e}", err=True)
        raise typer.Exit(2) from None
    removed = cache.prune(max_size=budget)
    typer.echo(f"removed {len(removed)} entries")


@cache_app.command("clear", help="Remove every entry.")
def clear() -> None:
    from runwasm.cache import Cache

    cache = _cache()
    assert isinstance(cache, Cache)
    typer.echo(f"removed {cache.clear()} entries")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"

"""`runwasm engines`: which engines this node has, their versions and capabilities."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    app.command("engines", help="List the Wasm engines: installed or not, version, "
                "path, capabilities.")(engines)


def engines(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    from runwasm import config as node_config
    from runwasm.engines.registry import describe_all

    rows = describe_all(node_config.load().engines)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("engine", "installed", "version", "path", "capabilities")
    for row in rows:
        installed = "yes" if row["installed"] else f"no: {row['problem']}"
        table.add_row(str(row["name"]), installed, str(row["version"] or "-"),
                      str(row["path"] or "-"), ", ".join(row["capabilities"]))
    Console().print(table)

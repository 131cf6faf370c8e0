"""Build the typer app from the verb modules and run it."""

from __future__ import annotations

import importlib

import typer

from runwasm.cli import VERBS


def build() -> typer.Typer:
    app = typer.Typer(
        name="runwasm",
        help="runwasm admin verbs. Every other verb is runc's (runwasm is a drop-in for runc).",
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    # A callback keeps typer in group mode even while only one verb is registered.
    app.callback()(_root)
    for module_name in VERBS.values():
        importlib.import_module(module_name).register(app)
    return app


def _root() -> None:
    """runwasm admin verbs. Every other verb is runc's."""


def run(args: list[str]) -> int:
    """Run an admin verb; its exit code."""
    try:
        build()(args=args, prog_name="runwasm", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0

"""The admin CLI (typer + rich): verbs runc does not have, for people and node jobs.

Loaded only when argv names an admin verb; the runc-compatible path never imports it.
"""

# admin verb -> module defining `register(app)`; one module per verb.
VERBS = {
    "engines": "runwasm.cli.engines",
    "install": "runwasm.cli.install",
    "doctor": "runwasm.cli.doctor",
    "cache": "runwasm.cli.cache",
    "precompile": "runwasm.cli.precompile",
}

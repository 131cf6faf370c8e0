"""Write the fast `runwasm` command: `python -IS` with an explicit import path.

pip's console-script wrapper imports `site` and `re` before runwasm runs, about 15 ms on
a small node, on every call CRI-O makes. This script skips both: the import path is
fixed when it is written.

    python -m runwasm.entry TARGET
        for this interpreter: runwasm's own location, then the site directories it was
        installed with (scripts/setup.sh writes .venv/bin/runwasm so);
    python -m runwasm.entry TARGET --python /usr/bin/python3 --path /usr/lib/runwasm
        for another interpreter and a fixed import path (the packages' /usr/bin/runwasm,
        whose private directory holds runwasm and its dependencies);
    python -m runwasm.entry TARGET --config /etc/runwasm/other.toml
        a runwasm bound to another node config: CRI-O hands its runtimes no environment
        but PATH, so RUNWASM_CONFIG cannot be set for it from outside (the tests' CRI-O).
"""

from __future__ import annotations

import os
import site
import sys

TEMPLATE = """#!{python} -IS
# Written by `python -m runwasm.entry`: a runc-compatible runtime for Wasm containers.
import sys
sys.path.extend({paths!r})  # after the standard library: its imports stay fast
{config}from runwasm.handler.main import main
main()
"""


def default_paths() -> list[str]:
    """runwasm's own location, then this interpreter's site directories."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [package_parent]
    for directory in site.getsitepackages():
        if directory not in paths and os.path.isdir(directory):  # each costs every import
            paths.append(directory)
    return paths


def script(python: str, paths: list[str] | None = None, config: str = "") -> str:
    bind = (f"import os\nos.environ.setdefault('RUNWASM_CONFIG', {config!r})\n"
            if config else "")
    return TEMPLATE.format(python=python, paths=default_paths() if paths is None else paths,
                           config=bind)


def write(target: str, python: str | None = None, paths: list[str] | None = None,
          config: str = "") -> None:
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(script(python or sys.executable, paths, config))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


def _main(args: list[str]) -> None:
    usage = ("usage: python -m runwasm.entry TARGET [--python PYTHON] [--path DIR]... "
             "[--config FILE]")
    if not args or args[0].startswith("-"):
        sys.exit(usage)
    target, python, paths, config = args[0], None, [], ""
    rest = args[1:]
    while rest:
        if len(rest) < 2 or rest[0] not in ("--python", "--path", "--config"):
            sys.exit(usage)
        if rest[0] == "--python":
            python = rest[1]
        elif rest[0] == "--config":
            config = os.path.abspath(rest[1])
        else:
            paths.append(rest[1])
        rest = rest[2:]
    write(target, python, paths or None, config)


if __name__ == "__main__":
    _main(sys.argv[1:])

"""Write the fast `runwasm` command: `python -IS` with an explicit import path.

pip's console-script wrapper imports `site` and `re` before runwasm runs, about 15 ms on
a small node, on every call CRI-O makes. This script skips both: the import path is
fixed when it is written (runwasm's own location, then the site directories it was
installed with).

    python -m runwasm.entry TARGET
"""

from __future__ import annotations

import os
import site
import sys

TEMPLATE = """#!{python} -IS
# Written by `python -m runwasm.entry`: a runc-compatible runtime for Wasm containers.
import sys
sys.path[:0] = {paths!r}
from runwasm.handler.main import main
main()
"""


def script(python: str) -> str:
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [package_parent]
    for directory in site.getsitepackages():
        if directory not in paths:
            paths.append(directory)
    return TEMPLATE.format(python=python, paths=paths)


def write(target: str, python: str | None = None) -> None:
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(script(python or sys.executable))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m runwasm.entry TARGET")
    write(sys.argv[1])

"""The cache's compile worker: `python -I -S -c BOOT REQUEST_JSON`, started by the
handler on the host (never in a container), under the node's memory and time bounds."""

from __future__ import annotations

import sys


def main() -> None:
    from runwasm import jsonfast
    from runwasm.engines.base import EngineError, Installation
    from runwasm.engines.registry import load

    request = jsonfast.loads(sys.argv[1])
    try:
        adapter = load(request["engine"])
        adapter.precompile(request["module"], request["out"], request["codegen"],
                           Installation(**request["installation"]))
    except EngineError as e:
        sys.stderr.write(f"{e}\n")
        sys.exit(1)
    except MemoryError:
        sys.stderr.write("out of memory\n")
        sys.exit(1)

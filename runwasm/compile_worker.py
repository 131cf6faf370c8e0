"""The cache's compile worker: `python -I -S -c BOOT REQUEST_JSON`, started by the
handler on the host (never in a container), under the node's memory and time bounds.

Exit codes: 0 compiled; 1 the engine refused the module (message on stderr);
3 out of memory (the cache.compile_memory bound); 4 anything else.
"""

from __future__ import annotations

import errno
import sys

EXIT_REFUSED = 1
EXIT_MEMORY = 3
EXIT_OTHER = 4


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
        _exit(EXIT_REFUSED, str(e))
    except MemoryError:
        _exit(EXIT_MEMORY, "out of memory")
    except OSError as e:
        # Loading the engine's library or mapping code can fail for want of memory.
        if e.errno == errno.ENOMEM or "map" in str(e):
            _exit(EXIT_MEMORY, f"out of memory ({e})")
        _exit(EXIT_OTHER, str(e))
    except Exception as e:  # one line for the user, never a traceback
        _exit(EXIT_OTHER, f"{type(e).__name__}: {e}")


def _exit(code: int, message: str) -> None:
    sys.stderr.write(message.strip().splitlines()[-1] + "\n" if message.strip() else "\n")
    sys.stderr.flush()
    sys.exit(code)

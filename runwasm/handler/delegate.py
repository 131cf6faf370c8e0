"""Find the delegate runtime (runc or crun) and hand the call over to it."""

from __future__ import annotations

import os

from runwasm.errors import RunwasmError
from runwasm.executables import search as _search

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from runwasm.config import NodeConfig

def find(config: NodeConfig) -> str:
    """The delegate's path; a clear error when none is installed."""
    if config.delegate:
        found = _search(config.delegate)
        if found is None:
            raise RunwasmError(
                f"delegate runtime {config.delegate!r} (runtime.delegate in {config.path})"
                " not found or not executable"
            )
        return found
    for name in config.search:
        found = _search(name)
        if found is not None:
            return found
    raise RunwasmError(
        "no delegate runtime found: searched PATH for " + ", ".join(config.search)
    )


def execute(delegate: str, args: list[str]) -> NoReturn:
    """Replace this process with the delegate: pid, stdio, fds and exit status pass through."""
    try:
        os.execv(delegate, [os.path.basename(delegate), *args])
    except OSError as e:
        raise RunwasmError(f"exec delegate {delegate}: {e.strerror}") from None

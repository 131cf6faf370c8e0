"""What runwasm remembers between calls, in its own root-only state: one JSON file per
thing remembered, named after it. Best effort both ways: a memo that cannot be read or
written only costs the work it would have saved. Not under /run/runwasm: that is runc's
--root for CRI-O's handler, where `runc list` would take any directory for a container.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def path_for(directory: str, name: str) -> str:
    """The memo file in `directory` for `name` (a path, say), as one file name."""
    escaped = name.replace("%", "%25").replace("/", "%2F")
    return os.path.join(directory, escaped[-200:] + ".json")


def read(path: str) -> Any:
    """The remembered value; None when there is none or it cannot be read."""
    from runwasm import jsonfast

    try:
        with open(path, "rb") as f:
            return jsonfast.loads(f.read())
    except (OSError, ValueError):
        return None


def write(path: str, value: Any) -> None:
    """Remember `value` (root-only, atomically); nothing when JSON cannot hold it or the
    state cannot be written."""
    from runwasm import jsonfast
    from runwasm.files import write_atomic

    try:
        data = jsonfast.dumps(value).encode()
    except (TypeError, ValueError):
        return
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_atomic(path, data, 0o600)
    except OSError:
        pass

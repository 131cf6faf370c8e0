"""What runwasm remembers between calls, in its own root-only state: one JSON file per
thing remembered, named after it. Best effort both ways: a memo that cannot be read or
written only costs the work it would have saved. Not under /run/runwasm: that is runc's
--root for CRI-O's handler, where `runc list` would take any directory for a container.

A directory keeps at most MAX_ENTRIES memos: a new one removes the least recently
written beyond that (a node has a handful; tests and benchmarks, with a config file in
every temporary directory, would otherwise leave thousands).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

MAX_ENTRIES: Final = 256


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
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        new = not os.path.exists(path)
        write_atomic(path, data, 0o600)
    except OSError:
        return
    if new:
        prune(directory, MAX_ENTRIES)


def prune(directory: str, keep: int) -> None:
    """Remove all but the `keep` most recently written memos in `directory`."""
    entries = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.endswith(".json") and entry.is_file(follow_symlinks=False):
                    try:
                        entries.append((entry.stat(follow_symlinks=False).st_mtime_ns,
                                        entry.path))
                    except OSError:
                        pass
    except OSError:
        return
    if len(entries) <= keep:
        return
    entries.sort(reverse=True)
    for _, old in entries[keep:]:
        try:
            os.unlink(old)
        except OSError:
            pass

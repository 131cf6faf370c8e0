"""Where an engine's code is imported from (host side): the import path of the
processes that run an engine, the launcher in the container and the cache's compile
worker on the host."""

from __future__ import annotations

import os
import sys

from runwasm.engines import BUILTIN
from runwasm.engines.registry import adapter_class

TYPE_CHECKING = False
if TYPE_CHECKING:
    from runwasm.engines.base import Installation


def import_root(name: str) -> str | None:
    """For a third-party adapter: the sys.path entry its module is imported from."""
    if name in BUILTIN:
        return None
    module = sys.modules[adapter_class(name).__module__]
    root = os.path.dirname(os.path.abspath(module.__file__ or ""))
    for _ in range(module.__name__.count(".")):
        root = os.path.dirname(root)
    return root


def import_path(adapter_root: str | None, installation: Installation) -> list[str]:
    """The import path of a process that runs an engine on the installation's
    interpreter (the launcher, the cache's compile worker): runwasm itself, a
    third-party adapter's root, the engine's own directories. Not this process's
    sys.path: that interpreter may be another one (wasmer's Python 3.10)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [package_parent]
    for path in (adapter_root, *installation.import_paths):
        if path and path not in paths:
            paths.append(path)
    return paths

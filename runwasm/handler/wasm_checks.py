"""What a Wasm container's create refuses before it writes anything, besides the spec's
types (spec_schema): an id runc would refuse, a module importing what its engine lacks,
bundle paths that are not the bundle's own, and arguments exec would refuse. A Linux
container's create never loads this module.
"""

from __future__ import annotations

import os
import stat

from runwasm import annotations as ann
from runwasm.errors import RunwasmError
from runwasm.handler.create import SKELETON

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from runwasm.handler.classify import Decision
    from runwasm.handler.create import Bundle, Runner
    from runwasm.wasmfile import Interface


def check_id(root: str, container_id: str) -> None:
    """runc's own checks of a new container's id, made before runwasm writes anything."""
    if (not container_id or container_id in (".", "..")
            or container_id.strip(_ID_CHARS)):
        raise RunwasmError(f"invalid container ID format: {ann.shown(container_id)}")
    if os.path.lexists(os.path.join(root, container_id)):
        raise RunwasmError("container with given ID already exists")  # runc's words (1.1+)


# runc accepts ids matching ^[\w+\-.]+$ (ASCII word characters, '+', '-', '.').
_ID_CHARS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-."


def check_imports(decision: Decision, runner: Runner, interface: Interface | None) -> None:
    """Refuse a core module that imports what its engine does not provide, naming it."""
    from runwasm.engines.imports import missing

    provided = runner.adapter.provided_imports(runner.installation)
    if interface is None or provided is None:
        return  # not a core module, or an adapter that declares nothing
    lacking = [(module, name, kind) for module, name, kind in interface.imports
               if kind != "function" or missing(provided, module, name)]
    if runner.invoke:  # a reactor's unknown function imports are linked as traps
        lacking = [entry for entry in lacking if entry[2] != "function"]
    if runner.settings.options:  # node-configured engine options may link more modules
        lacking = [entry for entry in lacking if entry[0] in provided]
    if not lacking:
        return
    module, name, kind = lacking[0]
    what = "" if kind == "function" else f" (a {kind})"
    more = f" (and {len(lacking) - 1} more)" if len(lacking) > 1 else ""
    raise RunwasmError(f"{decision.module} imports {ann.shown(module, quote=False)}."
                       f"{ann.shown(name, quote=False)}{what}{more}, which engine "
                       f"{runner.name} does not provide")


def check_written_paths(bundle: Bundle) -> None:
    """What prepare writes must be the bundle's own files: a symlink (or a file of another
    kind) in their place would send the writes, or the clean-up, elsewhere."""
    from runwasm.files import file_kind

    for path, kind in ((bundle.config_path, stat.S_ISREG), (bundle.state_dir, stat.S_ISDIR),
                       (os.path.join(bundle.state_dir, SKELETON), stat.S_ISDIR)):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue  # below a state dir that is not one: reported for the state dir
        if not kind(mode):
            raise RunwasmError(f"{path} is {file_kind(mode)}: refused (runwasm writes there)")


# Linux's MAX_ARG_STRLEN: the bytes (with the final NUL) of one argument or environment
# string. The guest's argv travels in the launcher's plan, one argument.
_MAX_ARG_STRLEN: Final = 32 * 4096


def check_exec_sizes(process: dict[str, Any], where: str) -> None:
    """Refuse what the kernel would refuse when runc starts the launcher (E2BIG)."""
    args = process["args"]
    size = len(args[-1].encode("utf-8", "surrogateescape")) + 1
    if size > _MAX_ARG_STRLEN:
        raise RunwasmError(f"{where}: process.args take {size} bytes as the launcher's plan; "
                           f"one argument holds at most {_MAX_ARG_STRLEN}")
    for index, entry in enumerate(process.get("env") or []):
        size = len(entry.encode("utf-8", "surrogateescape")) + 1
        if size > _MAX_ARG_STRLEN:
            raise RunwasmError(f"{where}: process.env[{index}] is {size} bytes; an environment "
                               f"entry holds at most {_MAX_ARG_STRLEN}")



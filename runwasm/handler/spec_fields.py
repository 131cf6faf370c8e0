"""The fields of a bundle's config.json that runwasm reads for every container, checked.

A Linux container's spec is runc's to judge: runwasm checks only what it reads to
classify (annotations, root.path, and in smart mode the entrypoint), each where it is
read. A Wasm container's whole spec is checked by spec_schema before it is rewritten.
Errors name the field as a path (`process.args[2]`) and never echo a long value.
"""

from __future__ import annotations

from runwasm.annotations import shown
from runwasm.errors import RunwasmError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

_JSON_NAMES: Final = {str: "a string", bool: "a boolean", int: "a number",
                      float: "a number", list: "an array", dict: "an object"}


def json_kind(value: Any) -> str:
    return "null" if value is None else _JSON_NAMES.get(type(value), "a value")


def field_error(where: str, message: str) -> RunwasmError:
    return RunwasmError(f"{where}: {message}")


def text_problem(value: str) -> str | None:
    """Why a string cannot be a path, argument or environment entry; None if it can."""
    if "\0" in value:
        return "contains a NUL byte"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def check_usable(value: Any, path: str, where: str) -> None:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise field_error(where, f"{path} {problem}")


def checked_annotations(spec: dict[str, Any], keys: tuple[str, ...], where: str) -> dict[str, Any]:
    """The spec's annotations, checked where runwasm reads them: an object, and each of
    `keys` (the ones runwasm reads) a usable string when present."""
    found = spec.get("annotations")
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise field_error(where, f"annotations: expected an object, not {json_kind(found)}")
    for key in keys:
        value = found.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RunwasmError(f"invalid annotation {key}: expected a string, not "
                               f"{json_kind(value)}")
        problem = text_problem(value)
        if problem:
            raise RunwasmError(f"invalid annotation {key}={shown(value)}: {problem}")
    return found


def root_path(spec: dict[str, Any], where: str) -> str:
    """root.path as written, checked ("" when absent: runc then uses the bundle itself)."""
    root = spec.get("root")
    if root is None:
        raise field_error(where, "root is missing (runc needs root.path)")
    if not isinstance(root, dict):
        raise field_error(where, f"root: expected an object, not {json_kind(root)}")
    path = root.get("path")
    if path is None:
        return ""
    if not isinstance(path, str):
        raise field_error(where, f"root.path: expected a string, not {json_kind(path)}")
    check_usable(path, "root.path", where)
    return path


def entrypoint_fields(spec: dict[str, Any], where: str = "config.json"
                      ) -> tuple[list[str], str, list[str]]:
    """(process.args, process.cwd, process.env), checked, for finding the entrypoint."""
    process = spec.get("process")
    if process is None:
        return [], "/", []
    if not isinstance(process, dict):
        raise field_error(where, f"process: expected an object, not {json_kind(process)}")
    values: list[list[str]] = []
    for key in ("args", "env"):
        items = process.get(key)
        if items is None:
            values.append([])
            continue
        if not isinstance(items, list):
            raise field_error(where, f"process.{key}: expected an array, not {json_kind(items)}")
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise field_error(where, f"process.{key}[{index}]: expected a string, not "
                                   f"{json_kind(item)}")
            check_usable(item, f"process.{key}[{index}]", where)
        values.append(items)
    cwd = process.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise field_error(where, f"process.cwd: expected a string, not {json_kind(cwd)}")
    check_usable(cwd, "process.cwd", where)
    return values[0], cwd or "/", values[1]

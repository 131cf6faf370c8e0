"""Node configuration: /etc/runwasm/config.toml (RUNWASM_CONFIG overrides the path).

Read on the handler's hot path, so only the standard library is imported up front; the
TOML parser loads only when the file exists (tomllib where the interpreter has it,
tomlkit on 3.9/3.10). The admin side writes the file with tomlkit so comments survive.
"""

from __future__ import annotations

import os

from runwasm.errors import RunwasmError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

DEFAULT_PATH: Final = "/etc/runwasm/config.toml"
DETECTION_MODES: Final = ("annotations", "smart")
LOG_LEVELS: Final = ("debug", "info", "warn", "error")
LOG_TARGETS: Final = ("auto", "journal", "syslog", "file", "none")
JOURNAL_SOCKET: Final = "/run/systemd/journal/socket"
SYSLOG_SOCKET: Final = "/dev/log"


class NodeConfig:
    """Validated node settings (a plain class: dataclasses cost ~10 ms to import)."""

    __slots__ = ("path", "delegate", "search", "default_engine", "detection", "log_target",
                 "log_file", "log_level", "journal_socket", "syslog_socket", "engines",
                 "cache_dir", "cache_max_size", "compile_timeout",
                 "compile_memory", "allow_image_artifacts")

    def __init__(
        self,
        path: str = DEFAULT_PATH,
        *,
        # A path, or a name searched on PATH; empty means: the first of `search` found.
        delegate: str = "",
        search: tuple[str, ...] = ("runc", "crun"),
        default_engine: str = "wasmtime",
        # "annotations": only annotated containers are Wasm; "smart": every container
        # reaching runwasm is sniffed as with module.wasm.image/variant=compat-smart.
        detection: str = "annotations",
        # Where decisions and errors go besides --log (CRI-O passes none): "auto" is the
        # file when `log_file` is set, else the journal, else syslog, whichever socket exists.
        log_target: str = "auto",
        log_file: str = "",
        log_level: str = "info",
        journal_socket: str = JOURNAL_SOCKET,
        syslog_socket: str = SYSLOG_SOCKET,
        # [engines.<name>] tables: name -> {"path": str, "options": [str], "python": str}
        engines: dict[str, dict[str, Any]] | None = None,
        # Precompiled-module cache (root-only; empty dir disables it).
        cache_dir: str = "/var/lib/runwasm/cache",
        cache_max_size: str = "10Gi",
        compile_timeout: str = "600s",
        compile_memory: str = "8Gi",
        allow_image_artifacts: bool = False,
    ) -> None:
        self.path = path
        self.delegate = delegate
        self.search = search
        self.default_engine = default_engine
        self.detection = detection
        self.log_target = log_target
        self.log_file = log_file
        self.log_level = log_level
        self.journal_socket = journal_socket
        self.syslog_socket = syslog_socket
        self.engines = engines or {}
        self.cache_dir = cache_dir
        self.cache_max_size = cache_max_size
        self.compile_timeout = compile_timeout
        self.compile_memory = compile_memory
        self.allow_image_artifacts = allow_image_artifacts


# section -> key -> (field name, expected type)
_SCHEMA: Final[dict[str, dict[str, tuple[str, type]]]] = {
    "runtime": {"delegate": ("delegate", str), "search": ("search", list)},
    "wasm": {"default_engine": ("default_engine", str), "detection": ("detection", str)},
    "log": {"target": ("log_target", str), "file": ("log_file", str),
            "level": ("log_level", str), "journal_socket": ("journal_socket", str),
            "syslog_socket": ("syslog_socket", str)},
    "cache": {"dir": ("cache_dir", str), "max_size": ("cache_max_size", str),
              "compile_timeout": ("compile_timeout", str),
              "compile_memory": ("compile_memory", str),
              "allow_image_artifacts": ("allow_image_artifacts", bool)},
}


def config_path() -> str:
    return os.environ.get("RUNWASM_CONFIG") or DEFAULT_PATH


def load(path: str | None = None) -> NodeConfig:
    """The node config; defaults when the file does not exist.

    Parsing TOML costs ~20 ms of imports (tomllib pulls in re, typing, datetime) on every
    call CRI-O makes, so the parsed table is remembered in runwasm's root-only state
    directory next to the exact text it came from, and used only for that same text.
    """
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return NodeConfig(path=path)
    except IsADirectoryError:
        raise RunwasmError(f"config {path}: is a directory") from None
    except OSError as e:
        raise RunwasmError(f"config {path}: {e.strerror}") from None
    memo = _memo_path(path)
    data = _read_memo(memo, raw)
    if data is None:
        data = _parse_toml(raw, path)
        _write_memo(memo, raw, data)
    return from_mapping(data, path)


# runwasm's own state (root-only; the packages make /var/lib/runwasm 0700); see memo.py.
MEMO_DIR: Final = "/var/lib/runwasm/parsed-config"


def _memo_path(path: str) -> str:
    from runwasm import memo

    return memo.path_for(MEMO_DIR, os.path.abspath(path))


def _read_memo(memo_file: str, raw: bytes) -> dict[str, Any] | None:
    from runwasm import memo

    entry = memo.read(memo_file)
    if not isinstance(entry, dict) or entry.get("raw") != raw.decode("utf-8", "replace"):
        return None
    data = entry.get("data")
    return data if isinstance(data, dict) else None


def _write_memo(memo_file: str, raw: bytes, data: dict[str, Any]) -> None:
    """Best effort: where runwasm cannot write its state, it parses every time (and TOML
    values JSON cannot hold, dates, are nothing runwasm reads anyway)."""
    from runwasm import memo

    memo.write(memo_file, {"raw": raw.decode("utf-8", "replace"), "data": data})


def _parse_toml(raw: bytes, path: str) -> dict[str, Any]:
    try:
        return parse_toml_text(raw.decode())
    except UnicodeDecodeError:
        raise RunwasmError(f"config {path}: not UTF-8 text") from None
    except ValueError as e:
        raise RunwasmError(f"config {path}: {e}") from None


def parse_toml_text(text: str) -> dict[str, Any]:
    """TOML with tomllib where the interpreter has it, else tomlkit; ValueError if bad."""
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        import tomlkit
        from tomlkit.exceptions import TOMLKitError

        try:
            return tomlkit.parse(text).unwrap()
        except TOMLKitError as e:
            raise ValueError(f"invalid TOML: {e}") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"invalid TOML: {e}") from None
    return data


def from_mapping(data: dict[str, Any], path: str = DEFAULT_PATH) -> NodeConfig:
    """Validate a parsed config; errors name the offending key."""
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section == "engines" and isinstance(table, dict):
            values["engines"] = _engines(path, table)
            continue
        keys = _SCHEMA.get(section)
        if keys is None or not isinstance(table, dict):
            raise RunwasmError(f"config {path}: unknown section [{section}]")
        for key, value in table.items():
            if key not in keys:
                raise RunwasmError(f"config {path}: unknown key {section}.{key}")
            field, kind = keys[key]
            if not isinstance(value, kind):
                raise RunwasmError(
                    f"config {path}: {section}.{key} must be a {_type_name(kind)}"
                )
            values[field] = value
    search = values.get("search")
    if search is not None:
        if not search or not all(isinstance(s, str) and s for s in search):
            raise RunwasmError(f"config {path}: runtime.search must list runtime names")
        values["search"] = tuple(search)
    from runwasm.annotations import ENGINE_NAMES

    _check_choice(path, "wasm.default_engine", values.get("default_engine"), ENGINE_NAMES
                  + ("wasmtime-cli",) + tuple(values.get("engines", {})))
    _check_choice(path, "wasm.detection", values.get("detection"), DETECTION_MODES)
    _check_choice(path, "log.level", values.get("log_level"), LOG_LEVELS)
    _check_choice(path, "log.target", values.get("log_target"), LOG_TARGETS)
    if values.get("log_target") == "file" and not values.get("log_file"):
        raise RunwasmError(f"config {path}: log.target = \"file\" needs log.file")
    _check_size(path, "cache.max_size", values.get("cache_max_size"))
    _check_size(path, "cache.compile_memory", values.get("compile_memory"))
    timeout = values.get("compile_timeout")
    if timeout is not None:
        from runwasm.limits import parse_duration

        try:
            parse_duration("cache.compile_timeout", timeout)
        except RunwasmError as e:
            raise RunwasmError(f"config {path}: {e}") from None
    return NodeConfig(path=path, **values)


def _check_size(path: str, key: str, value: str | None) -> None:
    if value is not None:
        from runwasm.limits import parse_quantity

        try:
            parse_quantity(key, value)
        except RunwasmError as e:
            raise RunwasmError(f"config {path}: {e}") from None


_ENGINE_KEYS: Final = {"path": str, "options": list, "python": str}


def _engines(path: str, tables: dict[str, Any]) -> dict[str, dict[str, Any]]:
    engines: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise RunwasmError(f"config {path}: engines.{name} must be a table")
        for key, value in table.items():
            kind = _ENGINE_KEYS.get(key)
            if kind is None:
                raise RunwasmError(f"config {path}: unknown key engines.{name}.{key}")
            if not isinstance(value, kind) or (
                    kind is list and not all(isinstance(v, str) for v in value)):
                what = "list of strings" if kind is list else _type_name(kind)
                raise RunwasmError(f"config {path}: engines.{name}.{key} must be a {what}")
        engines[name] = dict(table)
    return engines


def _check_choice(path: str, key: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise RunwasmError(
            f"config {path}: {key} = {value!r} is not one of {', '.join(choices)}"
        )


def _type_name(kind: type) -> str:
    return {str: "string", list: "list", bool: "boolean", int: "integer"}[kind]

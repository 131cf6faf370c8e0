"""`runwasm doctor`: check that this node can run Wasm containers through runwasm.

Each check is ok, warn or fail, with what was found and, when not ok, how to fix it.
The exit code is 1 when any check fails, else 0. Nothing is written anywhere.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from typing import Any

import typer

from runwasm.cli import install as inst

OK, WARN, FAIL = "ok", "warn", "fail"
CRIO_CONFIG = "/etc/crio/crio.conf"
CRIO_SOCKET = "/var/run/crio/crio.sock"
# The precompiled-module cache when the node config does not say (config.py's default).
STATE_DIR = "/var/lib/runwasm/cache"
MIN_PYTHON = (3, 9)


class Check:
    __slots__ = ("name", "status", "detail", "fix")

    def __init__(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail,
                "fix": self.fix}


def register(app: typer.Typer) -> None:
    app.command("doctor", help="Check this node: Python, node config, delegate runtime, "
                "engines, cache directory and the CRI-O configuration.")(doctor)


def doctor(
    config: str = typer.Option("", "--config", help="Node config to check (default: "
                               "$RUNWASM_CONFIG or /etc/runwasm/config.toml)."),
    crio_dir: str = typer.Option(inst.CRIO_DROPIN_DIR, "--crio-dir",
                                 help="CRI-O's drop-in directory."),
    crio_config: str = typer.Option(CRIO_CONFIG, "--crio-config",
                                    help="CRI-O's main config file."),
    handler: str = typer.Option(inst.HANDLER, "--handler",
                                help="The CRI-O handler that should run runwasm."),
    cache_dir: str = typer.Option("", "--cache-dir", help="The precompiled-module cache "
                                  "directory (default: the node config's cache.dir)."),
    crio_socket: str = typer.Option("", "--crio-socket", help="A running CRI-O's socket, "
                                    "asked which handlers it loaded (default: "
                                    f"{CRIO_SOCKET} when it exists)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    checks, node = [check_python()], None
    node_check, node = check_node_config(config)
    checks.append(node_check)
    checks.append(check_delegate(node))
    checks.append(check_engines(node))
    checks.append(check_cache_dir(cache_dir or getattr(node, "cache_dir", STATE_DIR)))
    checks.extend(check_crio(crio_config, crio_dir, handler, node))
    if crio_socket or os.path.exists(CRIO_SOCKET):
        try:
            configured = handler in configured_runtimes(crio_config, crio_dir)[1]
        except ValueError:
            configured = True
        checks.append(check_crio_live(crio_socket or CRIO_SOCKET, handler, configured))
    failed = any(c.status == FAIL for c in checks)
    if as_json:
        import json

        typer.echo(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]},
                              indent=2))
    else:
        _print(checks, failed)
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------
# checks


def check_python() -> Check:
    from runwasm import __version__

    version = ".".join(str(v) for v in sys.version_info[:3])
    detail = f"Python {version} ({sys.executable}), runwasm {__version__}"
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", FAIL, detail, "runwasm needs Python 3.9 or newer")
    return Check("python", OK, detail)


def check_node_config(path: str) -> tuple[Check, Any]:
    from runwasm import config as node_config
    from runwasm.errors import RunwasmError

    path = path or node_config.config_path()
    if not os.path.exists(path):
        return Check("node config", WARN, f"{path} not found: the defaults are in use",
                     "install the default (configs/config.toml, every key explained) at "
                     f"{path}"), node_config.NodeConfig(path=path)
    try:
        loaded = node_config.load(path)
    except RunwasmError as e:
        return Check("node config", FAIL, e.message,
                     "fix the key named; runwasm refuses every call while it is invalid"), \
            node_config.NodeConfig(path=path)
    return Check("node config", OK, f"{path}: default engine {loaded.default_engine}, "
                 f"detection {loaded.detection}"), loaded


def check_delegate(node: Any) -> Check:
    from runwasm.errors import RunwasmError
    from runwasm.handler import delegate as delegates

    try:
        found = delegates.find(node)
    except RunwasmError as e:
        return Check("delegate runtime", FAIL, e.message,
                     "install runc (apt-get install runc) or set runtime.delegate in "
                     f"{node.path}")
    version = _first_line([found, "--version"])
    return Check("delegate runtime", OK, f"{found}" + (f" ({version})" if version else ""))


def check_engines(node: Any) -> Check:
    from runwasm.engines.registry import describe_all

    try:
        rows: list[dict[str, Any]] = describe_all(getattr(node, "engines", {}) or {})
    except Exception as e:  # a broken third-party adapter must not hide the others
        return Check("engines", FAIL, f"cannot list engines: {e}",
                     "check the packages providing runwasm.engines entry points")
    default = node.default_engine
    installed = [r for r in rows if r.get("installed")]
    missing = [r for r in rows if not r.get("installed")]
    parts = [f"{r['name']} {r.get('version') or ''}".strip() for r in installed]
    detail = "installed: " + (", ".join(parts) or "none")
    if missing:
        detail += "; not installed: " + ", ".join(str(r["name"]) for r in missing)
    row = next((r for r in rows if r.get("name") == default), None)
    if row is None or not row.get("installed"):
        why = (row or {}).get("problem") or f"engine {default} is unknown"
        return Check("engines", FAIL, f"default engine {default} is not usable: {why}; "
                     + detail, "install it, or set wasm.default_engine to an installed "
                     f"engine in {node.path} (see `runwasm engines`)")
    return Check("engines", OK, f"default {default}; {detail}")


def check_cache_dir(path: str) -> Check:
    name = "cache directory"
    if not path:
        return Check(name, OK, "disabled (cache.dir is empty): every start compiles its module")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Check(name, WARN, f"{path} does not exist yet",
                     f"install -d -m 0700 -o root -g root {path}")
    except OSError as e:
        return Check(name, FAIL, f"{path}: {e.strerror}", f"check {path}")
    if not stat.S_ISDIR(st.st_mode):
        return Check(name, FAIL, f"{path} is not a directory",
                     f"remove it, then: install -d -m 0700 -o root -g root {path}")
    mode = stat.S_IMODE(st.st_mode)
    problems = []
    if st.st_uid != 0:
        problems.append(f"owned by uid {st.st_uid}, not root")
    if mode & 0o077:
        problems.append(f"mode {mode:04o} lets others in")
    if problems:
        return Check(name, FAIL, f"{path}: {', '.join(problems)} (compiled modules are "
                     "code: nobody but root may write or read them)",
                     f"chown root:root {path} && chmod 0700 {path}")
    return Check(name, OK, f"{path} (root, {mode:04o})")


def check_crio(main_config: str, dropin_dir: str, handler: str, node: Any) -> list[Check]:
    """The CRI-O handler as CRI-O would merge it: main config, then drop-ins in order,
    a drop-in's runtime table replacing the same table from earlier files."""
    name = "CRI-O handler"
    try:
        files, runtimes = configured_runtimes(main_config, dropin_dir)
    except ValueError as e:
        return [Check(name, FAIL, f"{e}: CRI-O will not start", "fix the file's TOML syntax")]
    if not files:
        return [Check(name, WARN, f"no CRI-O configuration ({main_config}, {dropin_dir}): "
                      "is CRI-O installed on this node?",
                      f"runwasm install crio --crio-dir {dropin_dir}")]
    checks = []
    if handler in runtimes:
        checks.append(_check_handler(handler, *runtimes[handler]))
    routed = [(key, table, path) for key, (table, path) in runtimes.items()
              if any(_is_runwasm(v) for v in (table.get("platform_runtime_paths") or {}
                                               ).values() if isinstance(v, str))]
    for key, table, path in routed:
        checks.append(_check_platform(key, table, path, node))
    if not checks:
        checks.append(Check(name, FAIL, f"no [crio.runtime.runtimes.{handler}] in "
                            f"{', '.join(files)}, and no platform_runtime_paths to runwasm",
                            f"runwasm install crio --crio-dir {dropin_dir}"))
    return checks


def configured_runtimes(main_config: str, dropin_dir: str
                        ) -> tuple[list[str], dict[str, tuple[dict[str, Any], str]]]:
    """(the files CRI-O reads, runtime name -> (its table, the file it came from));
    ValueError naming the file when one is not valid TOML."""
    files = [main_config] if os.path.isfile(main_config) else []
    if os.path.isdir(dropin_dir):
        for parent, dirs, names in os.walk(dropin_dir):
            dirs.sort()
            files.extend(os.path.join(parent, n) for n in sorted(names))
    runtimes: dict[str, tuple[dict[str, Any], str]] = {}
    for path in files:
        try:
            data = _parse(path)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        tables = data.get("crio", {}).get("runtime", {}).get("runtimes", {})
        if isinstance(tables, dict):
            for key, table in tables.items():
                if isinstance(table, dict):
                    runtimes[key] = (table, path)
    return files, runtimes


def _check_handler(handler: str, table: dict[str, Any], path: str) -> Check:
    name = "CRI-O handler"
    where = f"[crio.runtime.runtimes.{handler}] in {path}"
    fails: list[str] = []
    warns: list[str] = []
    runtime_type = table.get("runtime_type", "")
    if runtime_type not in ("", "oci"):
        fails.append(f'runtime_type = "{runtime_type}" (runwasm is an "oci" runtime)')
    runtime_path = table.get("runtime_path") or ""
    if not runtime_path:
        fails.append(f'runtime_path is empty (CRI-O would look for "{handler}" on PATH)')
    elif not (os.path.isfile(runtime_path) and os.access(runtime_path, os.X_OK)):
        fails.append(f"runtime_path {runtime_path} is not an executable file")
    elif not _is_runwasm(runtime_path):
        warns.append(f"runtime_path {runtime_path} is not this runwasm "
                     f"({inst.runwasm_path()})")
    allowed = table.get("allowed_annotations") or []
    refused = [a for a in allowed if a not in inst.CRIO_ALLOWED_ANNOTATIONS]
    if refused:
        fails.append(f"allowed_annotations has {', '.join(map(repr, refused))}: CRI-O "
                     "accepts only its own list there and ignores the whole handler")
    if "module.wasm.image/variant" not in allowed:
        warns.append("allowed_annotations lacks module.wasm.image/variant: CRI-O strips "
                     "it, so only runwasm.io/engine or node smart detection mark Wasm")
    unknown = sorted(k for k in table if k not in inst.CRIO_HANDLER_KEYS)
    if unknown:
        warns.append(f"keys CRI-O does not know: {', '.join(unknown)}")
    cgroup = table.get("monitor_cgroup")
    if cgroup not in (None, "", "pod") and not str(cgroup).endswith(".slice"):
        fails.append(f'monitor_cgroup = "{cgroup}" (must be "pod", empty or a systemd slice)')
    if fails:
        return Check(name, FAIL, f"{where}: " + "; ".join(fails + warns),
                     "runwasm install crio (rewrites runwasm's keys, keeps the others)")
    if warns:
        return Check(name, WARN, f"{where}: " + "; ".join(warns),
                     "runwasm install crio (rewrites runwasm's keys, keeps the others)")
    return Check(name, OK, f"{where}: runtime_path {runtime_path}, allowed_annotations "
                 f"{', '.join(allowed)}")


def _check_platform(handler: str, table: dict[str, Any], path: str, node: Any) -> Check:
    """platform_runtime_paths to runwasm: CRI-O runs this handler's runtime itself for
    start/state/kill/delete, so it must be the very runtime runwasm delegates to."""
    from runwasm.errors import RunwasmError
    from runwasm.executables import search
    from runwasm.handler import delegate as delegates

    name = "CRI-O platform"
    where = f"[crio.runtime.runtimes.{handler}] in {path}"
    platforms = sorted(k for k, v in (table.get("platform_runtime_paths") or {}).items()
                       if isinstance(v, str) and _is_runwasm(v))
    runtime = search(table.get("runtime_path") or handler)
    try:
        delegate = delegates.find(node)
    except RunwasmError:
        delegate = ""
    if runtime is None:
        return Check(name, FAIL, f"{where}: its runtime {table.get('runtime_path') or handler}"
                     " is not found", "install it or fix runtime_path")
    if delegate and not _same_file(runtime, delegate):
        return Check(name, FAIL, f"{where} routes {', '.join(platforms)} to runwasm, but "
                     f"CRI-O runs {runtime} for start/state/kill/delete while runwasm "
                     f"creates containers with {delegate}",
                     f"set runtime.delegate = \"{runtime}\" in {node.path}")
    return Check(name, OK, f"{where} routes {', '.join(platforms)} to runwasm; runc-side "
                 f"verbs go to {runtime}")


def check_crio_live(socket_path: str, handler: str, configured: bool = True) -> Check:
    """What the running CRI-O loaded (its /config endpoint on its socket): the files can
    look right while CRI-O ignored the handler, e.g. for an annotation it refuses, or
    because it was not restarted after `runwasm install crio`. `configured`: the files
    define the handler, so CRI-O not running it is a failure even with platform routing."""
    name = "CRI-O running"
    try:
        loaded = _crio_runtimes(socket_path)
    except (OSError, ValueError) as e:
        return Check(name, FAIL, f"cannot ask CRI-O at {socket_path}: {e}",
                     "start CRI-O (systemctl start crio), or point --crio-socket at it")
    table = loaded.get(handler)
    routed = sorted(key for key, t in loaded.items() if any(
        isinstance(v, str) and _is_runwasm(v)
        for v in (t.get("platform_runtime_paths") or {}).values()))
    if table is None and (configured or not routed):
        return Check(name, FAIL, f"CRI-O at {socket_path} has not loaded handler {handler} "
                     f"(it runs: {', '.join(sorted(loaded)) or 'none'}): CRI-O ignores a "
                     "handler whose allowed_annotations has an entry it refuses or whose "
                     "runtime_path does not exist, and reads drop-ins only when it starts",
                     "runwasm install crio, then systemctl restart crio; its log says why "
                     f"a handler is ignored (journalctl -u crio | grep '{handler}')")
    parts = []
    if table is not None:
        path = table.get("runtime_path") or ""
        if not _is_runwasm(path):
            return Check(name, WARN, f"CRI-O at {socket_path} runs handler {handler} with "
                         f"runtime_path {path}, not this runwasm ({inst.runwasm_path()})",
                         "runwasm install crio, then systemctl restart crio")
        parts.append(f"handler {handler} loaded (runtime_path {path})")
    if routed:
        parts.append(f"platform_runtime_paths to runwasm on {', '.join(routed)}")
    return Check(name, OK, f"CRI-O at {socket_path}: " + "; ".join(parts))


def _crio_runtimes(socket_path: str) -> dict[str, dict[str, Any]]:
    """The runtime tables of a running CRI-O, from GET /config on its unix socket."""
    import http.client
    import socket

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(socket_path)

    connection = UnixConnection("localhost", timeout=10)
    try:
        connection.request("GET", "/config")
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
    except http.client.HTTPException as e:
        raise ValueError(f"bad answer: {e}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise ValueError(f"GET /config answered {response.status}")
    from runwasm.config import parse_toml_text

    tables = parse_toml_text(body).get("crio", {}).get("runtime", {}).get("runtimes", {})
    return {k: v for k, v in tables.items() if isinstance(v, dict)} if isinstance(
        tables, dict) else {}


# ---------------------------------------------------------------------------------------
# helpers


def _parse(path: str) -> dict[str, Any]:
    from runwasm.config import parse_toml_text

    try:
        with open(path, "rb") as f:
            text = f.read().decode()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(getattr(e, "strerror", None) or str(e)) from None
    return parse_toml_text(text)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _is_runwasm(path: str) -> bool:
    return _same_file(path, inst.runwasm_path())


def _first_line(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = result.stdout.strip().splitlines()
    return lines[0] if lines else ""


def _print(checks: list[Check], failed: bool) -> None:
    from rich.console import Console
    from rich.text import Text

    colours = {OK: "green", WARN: "yellow", FAIL: "red"}
    console = Console(highlight=False, soft_wrap=True)
    width = max(len(c.name) for c in checks) + 2
    for c in checks:
        console.print(Text.assemble((f"{c.status:<5} ", f"bold {colours[c.status]}"),
                                    (f"{c.name:<{width}}", "bold"), c.detail))
        if c.fix:
            console.print(Text.assemble(" " * (6 + width), ("fix: ", "cyan"), c.fix))
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    summary = f"{counts[OK]} ok, {counts[WARN]} warn, {counts[FAIL]} fail"
    console.print(Text(summary, style="bold red" if failed else "bold green"))

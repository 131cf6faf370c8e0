"""The plan: what the handler tells the launcher to run (plain data, JSON in argv).

Every path in a plan is as the launcher sees it inside the container: the image root
is mounted at APP_ROOT, the module and the guest's cwd are under it.
"""

from __future__ import annotations

from runwasm import jsonfast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final

APP_ROOT: Final = "/.app"
VERSION: Final = 1
# What a plan runs (Plan.kind); runwasm.wasmfile sniffs files into these and more.
MODULE: Final = "module"
COMPONENT: Final = "component"
WAT: Final = "wat"
PRECOMPILED: Final = "precompiled"  # a Wasmtime artifact (.cwasm): ELF with engine code
# What the container's start-up sets in the launcher's environment on its own: runc sets
# HOME when process.env has none or an empty one, and the interpreter's locale coercion
# (PEP 538, which -I cannot turn off) sets LC_CTYPE. The plan records what process.env held
# for them, so the guest gets exactly process.env.
STARTUP_SET: Final = ("HOME", "LC_CTYPE")


def guest_path(path: str) -> str:
    """A launcher-side path under APP_ROOT as the guest (and the pod's author) knows it."""
    return path[len(APP_ROOT):] if path.startswith(APP_ROOT + "/") else path


def startup_restore(env: list[str]) -> dict[str, str | None]:
    """What the launcher must put back: {name: its value in process.env, None if absent}
    for each variable the start-up may have set or changed."""
    values: dict[str, str] = {}
    for entry in env:
        if not isinstance(entry, str):
            continue  # runc refuses such a spec itself
        name, sep, value = entry.partition("=")
        if sep and name in STARTUP_SET:
            values[name] = value  # the last one wins, as runc dedups
    restore: dict[str, str | None] = {"LC_CTYPE": values.get("LC_CTYPE")}
    if not values.get("HOME"):  # runc leaves a non-empty HOME alone
        restore["HOME"] = values.get("HOME")
    return restore


def guest_environment(environ: Mapping[str, str], restore: dict[str, str | None]
                      ) -> list[tuple[str, str]]:
    """The launcher's environment (process.env after runc and the interpreter) with the
    start-up's own changes undone, in process.env's order."""
    env: list[tuple[str, str]] = []
    for name, value in environ.items():
        if name in restore:
            original = restore[name]
            if original is None:
                continue  # added by the start-up
            value = original
        env.append((name, value))
    return env


class Limits:
    """Per-pod limits from annotations; None means unlimited."""

    __slots__ = ("max_memory", "timeout", "fuel")

    def __init__(self, max_memory: int | None = None, timeout: float | None = None,
                 fuel: int | None = None) -> None:
        self.max_memory = max_memory  # bytes of linear memory
        self.timeout = timeout  # wall-clock seconds
        self.fuel = fuel  # wasmtime fuel units

    def to_dict(self) -> dict[str, Any]:
        return {"max_memory": self.max_memory, "timeout": self.timeout, "fuel": self.fuel}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        return cls(data.get("max_memory"), data.get("timeout"), data.get("fuel"))


class Plan:
    __slots__ = ("engine", "module", "kind", "args", "cwd", "readonly", "limits",
                 "executable", "options", "sockets", "artifact", "invoke", "engine_env",
                 "restore_env")

    def __init__(self, *, engine: str, module: str, kind: str, args: list[str],
                 cwd: str, readonly: bool, limits: Limits | None = None,
                 executable: str = "", options: list[str] | None = None,
                 sockets: bool = False, artifact: str = "", invoke: str = "",
                 engine_env: list[str] | None = None, env: list[str] | None = None) -> None:
        self.engine = engine
        self.module = module  # launcher-side path, under APP_ROOT
        self.kind = kind  # MODULE, COMPONENT, WAT or PRECOMPILED
        self.args = args  # the guest's argv, process.args as given
        self.cwd = cwd  # the guest's cwd, launcher-side (under APP_ROOT), symlinks resolved
        self.readonly = readonly
        self.limits = limits or Limits()
        self.executable = executable  # CLI engines: the engine binary
        self.options = options or []  # CLI engines: extra options from the node config
        self.sockets = sockets  # the pod asked for network sockets
        # launcher-side path of the precompiled module from runwasm's cache, if any
        self.artifact = artifact
        # a reactor module: the export to call after _initialize (its i32 is the exit code)
        self.invoke = invoke
        # CLI engines: NAME=VALUE for the engine process itself (never the guest's)
        self.engine_env = engine_env or []
        # from process.env (`env`): what the launcher undoes of the start-up's own changes
        self.restore_env = startup_restore(env or [])

    def to_json(self) -> str:
        return jsonfast.dumps({
            "v": VERSION, "engine": self.engine, "module": self.module, "kind": self.kind,
            "args": self.args, "cwd": self.cwd, "readonly": self.readonly,
            "limits": self.limits.to_dict(), "executable": self.executable,
            "options": self.options, "sockets": self.sockets, "artifact": self.artifact,
            "invoke": self.invoke, "engine_env": self.engine_env,
            "restore_env": self.restore_env,
        })

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data: dict[str, Any] = jsonfast.loads(text)
        if not isinstance(data, dict):
            raise ValueError("plan is not a JSON object")
        if data.get("v") != VERSION:
            raise ValueError(f"plan version {data.get('v')!r}, expected {VERSION}")
        plan = cls(engine=data["engine"], module=data["module"], kind=data["kind"],
                   args=list(data["args"]), cwd=data["cwd"], readonly=bool(data["readonly"]),
                   limits=Limits.from_dict(data.get("limits") or {}),
                   executable=data.get("executable", ""), options=list(data.get("options", [])),
                   sockets=bool(data.get("sockets", False)),
                   artifact=data.get("artifact", ""), invoke=data.get("invoke", ""),
                   engine_env=list(data.get("engine_env", [])))
        restore = data.get("restore_env") or {}
        if not isinstance(restore, dict):
            raise ValueError("plan restore_env is not a JSON object")
        plan.restore_env = dict(restore)
        return plan

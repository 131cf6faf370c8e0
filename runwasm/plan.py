"""The plan: what the handler tells the launcher to run (plain data, JSON in argv).

Every path in a plan is as the launcher sees it inside the container: the image root
is mounted at APP_ROOT, the module and the guest's cwd are under it.
"""

from __future__ import annotations

from runwasm import jsonfast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

APP_ROOT: Final = "/.app"
VERSION: Final = 1


def guest_path(path: str) -> str:
    """A launcher-side path under APP_ROOT as the guest (and the pod's author) knows it."""
    return path[len(APP_ROOT):] if path.startswith(APP_ROOT + "/") else path


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
                 "executable", "options", "sockets", "artifact", "invoke", "engine_env")

    def __init__(self, *, engine: str, module: str, kind: str, args: list[str],
                 cwd: str, readonly: bool, limits: Limits | None = None,
                 executable: str = "", options: list[str] | None = None,
                 sockets: bool = False, artifact: str = "", invoke: str = "",
                 engine_env: list[str] | None = None) -> None:
        self.engine = engine
        self.module = module  # launcher-side path, under APP_ROOT
        self.kind = kind  # runwasm.wasmfile kind: module, component or wat
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

    def to_json(self) -> str:
        return jsonfast.dumps({
            "v": VERSION, "engine": self.engine, "module": self.module, "kind": self.kind,
            "args": self.args, "cwd": self.cwd, "readonly": self.readonly,
            "limits": self.limits.to_dict(), "executable": self.executable,
            "options": self.options, "sockets": self.sockets, "artifact": self.artifact,
            "invoke": self.invoke, "engine_env": self.engine_env,
        })

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data: dict[str, Any] = jsonfast.loads(text)
        if not isinstance(data, dict):
            raise ValueError("plan is not a JSON object")
        if data.get("v") != VERSION:
            raise ValueError(f"plan version {data.get('v')!r}, expected {VERSION}")
        return cls(engine=data["engine"], module=data["module"], kind=data["kind"],
                   args=list(data["args"]), cwd=data["cwd"], readonly=bool(data["readonly"]),
                   limits=Limits.from_dict(data.get("limits") or {}),
                   executable=data.get("executable", ""), options=list(data.get("options", [])),
                   sockets=bool(data.get("sockets", False)),
                   artifact=data.get("artifact", ""), invoke=data.get("invoke", ""),
                   engine_env=list(data.get("engine_env", [])))

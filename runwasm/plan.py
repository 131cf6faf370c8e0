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


class Plan:
    __slots__ = ("engine", "module", "kind", "args", "cwd", "readonly")

    def __init__(self, *, engine: str, module: str, kind: str, args: list[str],
                 cwd: str, readonly: bool) -> None:
        self.engine = engine
        self.module = module  # launcher-side path, under APP_ROOT
        self.kind = kind  # runwasm.wasmfile kind: module, component or wat
        self.args = args  # the guest's argv, process.args as given
        self.cwd = cwd  # the guest's cwd, launcher-side (under APP_ROOT), symlinks resolved
        self.readonly = readonly

    def to_json(self) -> str:
        return jsonfast.dumps({
            "v": VERSION, "engine": self.engine, "module": self.module, "kind": self.kind,
            "args": self.args, "cwd": self.cwd, "readonly": self.readonly,
        })

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data: dict[str, Any] = jsonfast.loads(text)
        if not isinstance(data, dict):
            raise ValueError("plan is not a JSON object")
        if data.get("v") != VERSION:
            raise ValueError(f"plan version {data.get('v')!r}, expected {VERSION}")
        return cls(engine=data["engine"], module=data["module"], kind=data["kind"],
                   args=list(data["args"]), cwd=data["cwd"], readonly=bool(data["readonly"]))

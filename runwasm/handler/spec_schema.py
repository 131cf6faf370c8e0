"""The runtime spec's JSON types, checked for a Wasm container before it is rewritten.

runwasm rewrites a Wasm container's config.json before runc sees it, so everything
runc's JSON decoder (Go's encoding/json into runtime-spec's types) would refuse is
refused here first, while the bundle is still untouched: a wrong type anywhere, a
number out of its type's range, a key Go would fold onto a field runwasm rewrites
("Process" for "process"), and strings the container cannot use (a NUL byte in a path,
an argument or an environment entry, an entry without "=", text that is not Unicode).
Linux containers never come here: their spec is runc's to judge.
"""

from __future__ import annotations

from runwasm.annotations import shown
from runwasm.handler.spec_fields import check_usable, field_error, json_kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final, Union

    Schema = Union[str, tuple[str, Any], dict[str, Any]]

# Scalar kinds, with Go's integer ranges.
S, B = "string", "boolean"
_RANGES: Final = {
    "u16": (0, (1 << 16) - 1), "u32": (0, (1 << 32) - 1), "u64": (0, (1 << 64) - 1),
    "i32": (-(1 << 31), (1 << 31) - 1), "i64": (-(1 << 63), (1 << 63) - 1),
}
U16, U32, U64, I32, I64 = "u16", "u32", "u64", "i32", "i64"
INT, UINT = I64, U64  # Go's int and uint are 64 bits on every platform runc supports


def _list(item: Schema) -> tuple[str, Schema]:
    return ("list", item)


def _map(item: Schema) -> tuple[str, Schema]:
    return ("map", item)


_STRINGS: Final = _list(S)
_ID_MAPPINGS: Final = _list({"containerID": U32, "hostID": U32, "size": U32})
_HOOKS: Final = _list({"path": S, "args": _STRINGS, "env": _STRINGS, "timeout": INT})
_THROTTLE: Final = _list({"major": I64, "minor": I64, "rate": U64})
_RESOURCES: Final = {
    "devices": _list({"allow": B, "type": S, "major": I64, "minor": I64, "access": S}),
    "memory": {"limit": I64, "reservation": I64, "swap": I64, "kernel": I64,
               "kernelTCP": I64, "swappiness": U64, "disableOOMKiller": B,
               "useHierarchy": B, "checkBeforeUpdate": B},
    "cpu": {"shares": U64, "quota": I64, "burst": U64, "period": U64, "realtimeRuntime": I64,
            "realtimePeriod": U64, "cpus": S, "mems": S, "idle": I64},
    "pids": {"limit": I64},
    "blockIO": {"weight": U16, "leafWeight": U16,
                "weightDevice": _list({"major": I64, "minor": I64, "weight": U16,
                                       "leafWeight": U16}),
                "throttleReadBpsDevice": _THROTTLE, "throttleWriteBpsDevice": _THROTTLE,
                "throttleReadIOPSDevice": _THROTTLE, "throttleWriteIOPSDevice": _THROTTLE},
    "hugepageLimits": _list({"pageSize": S, "limit": U64}),
    "network": {"classID": U32, "priorities": _list({"name": S, "priority": U32})},
    "rdma": _map({"hcaHandles": U32, "hcaObjects": U32}),
    "unified": _map(S),
}
_SECCOMP: Final = {
    "defaultAction": S, "defaultErrnoRet": UINT, "architectures": _STRINGS, "flags": _STRINGS,
    "listenerPath": S, "listenerMetadata": S,
    "syscalls": _list({"names": _STRINGS, "action": S, "errnoRet": UINT,
                       "args": _list({"index": UINT, "value": U64, "valueTwo": U64,
                                      "op": S})}),
}
_PROCESS: Final = {
    "terminal": B, "consoleSize": {"height": UINT, "width": UINT},
    "user": {"uid": U32, "gid": U32, "umask": U32, "additionalGids": _list(U32),
             "username": S},
    "args": _STRINGS, "commandLine": S, "env": _STRINGS, "cwd": S,
    "capabilities": {name: _STRINGS for name in ("bounding", "effective", "inheritable",
                                                  "permitted", "ambient")},
    "rlimits": _list({"type": S, "hard": U64, "soft": U64}),
    "noNewPrivileges": B, "apparmorProfile": S, "oomScoreAdj": INT,
    "scheduler": {"policy": S, "nice": I32, "priority": I32, "flags": _STRINGS,
                  "runtime": U64, "deadline": U64, "period": U64},
    "selinuxLabel": S, "ioPriority": {"class": S, "priority": INT},
    "execCPUAffinity": {"initial": S, "final": S},
}
_LINUX: Final = {
    "uidMappings": _ID_MAPPINGS, "gidMappings": _ID_MAPPINGS, "sysctl": _map(S),
    "resources": _RESOURCES, "cgroupsPath": S,
    "namespaces": _list({"type": S, "path": S}),
    "devices": _list({"path": S, "type": S, "major": I64, "minor": I64, "fileMode": U32,
                      "uid": U32, "gid": U32}),
    "seccomp": _SECCOMP, "rootfsPropagation": S, "maskedPaths": _STRINGS,
    "readonlyPaths": _STRINGS, "mountLabel": S,
    "intelRdt": {"closID": S, "l3CacheSchema": S, "memBwSchema": S, "enableCMT": B,
                 "enableMBM": B},
    "personality": {"domain": S, "flags": _STRINGS},
    "timeOffsets": _map({"secs": I64, "nanosecs": U32}),
}
SPEC: Final = {
    "ociVersion": S, "process": _PROCESS, "root": {"path": S, "readonly": B},
    "hostname": S, "domainname": S,
    "mounts": _list({"destination": S, "type": S, "source": S, "options": _STRINGS,
                     "uidMappings": _ID_MAPPINGS, "gidMappings": _ID_MAPPINGS}),
    "hooks": {name: _HOOKS for name in ("prestart", "createRuntime", "createContainer",
                                        "startContainer", "poststart", "poststop")},
    "annotations": _map(S), "linux": _LINUX,
    # Other platforms' sections: runc decodes them too, so they must be objects.
    "solaris": {}, "windows": {}, "vm": {}, "zos": {},
}

MAX_DEPTH: Final = 64  # far deeper than any spec; JSON nested deeper is refused


def _expected(schema: Schema) -> str:
    if isinstance(schema, (dict, tuple)):
        return "an array" if isinstance(schema, tuple) and schema[0] == "list" else "an object"
    return {S: "a string", B: "a boolean"}.get(schema, "an integer")


def _check(value: Any, schema: Schema, path: str, where: str, depth: int = 0) -> None:
    if value is None:
        return  # Go leaves the field at its zero value
    if depth > MAX_DEPTH:
        raise field_error(where, f"{path} is nested too deeply")
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise field_error(where, f"{path}: expected an object, not {json_kind(value)}")
        for key, item in value.items():
            sub = schema.get(key)
            if sub is None:
                folded = _fold(key)
                field = next((name for name in schema if _fold(name) == folded), None)
                if field is not None:
                    # Go matches keys case-insensitively: runc would read this one into
                    # a field runwasm does not see (or rewrites).
                    raise field_error(where, f"{_join(path, key)}: runc would read this key "
                                             f"as {_join(path, field)}")
                _depth(item, _join(path, key), where, depth + 1)
                continue
            _check(item, sub, _join(path, key), where, depth + 1)
    elif isinstance(schema, tuple):
        container, item_schema = schema
        if container == "list":
            if not isinstance(value, list):
                raise field_error(where, f"{path}: expected an array, not {json_kind(value)}")
            for index, item in enumerate(value):
                if item is None:  # Go would take a zero value; no spec writer means that
                    raise field_error(where, f"{path}[{index}]: expected "
                                             f"{_expected(item_schema)}, not null")
                _check(item, item_schema, f"{path}[{index}]", where, depth + 1)
        else:
            if not isinstance(value, dict):
                raise field_error(where, f"{path}: expected an object, not {json_kind(value)}")
            for key, item in value.items():
                _check(item, item_schema, f"{path}[{shown(key)}]", where, depth + 1)
    elif schema == S:
        if not isinstance(value, str):
            raise field_error(where, f"{path}: expected a string, not {json_kind(value)}")
    elif schema == B:
        if not isinstance(value, bool):
            raise field_error(where, f"{path}: expected a boolean, not {json_kind(value)}")
    else:
        low, high = _RANGES[schema]
        if not isinstance(value, int) or isinstance(value, bool):
            raise field_error(where, f"{path}: expected an integer, not {json_kind(value)}")
        if not low <= value <= high:
            raise field_error(where, f"{path}: {shown(str(value), quote=False)} is out of range "
                                     f"for {schema}")


def _depth(value: Any, path: str, where: str, depth: int) -> None:
    """A value runwasm does not know passes as it is, if it is not absurdly deep."""
    if depth > MAX_DEPTH:
        raise field_error(where, f"{path} is nested too deeply")
    if isinstance(value, dict):
        for item in value.values():
            _depth(item, path, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _depth(item, path, where, depth + 1)


def _fold(key: str) -> str:
    # Go's case folding of ASCII field names also maps U+017F (long s) to s and U+212A
    # (Kelvin) to k; str.lower() does the latter.
    return key.lower().replace("\u017f", "s")


def _join(path: str, key: str) -> str:
    return f"{path}.{shown(key, quote=False)}" if path else shown(key, quote=False)


def check(spec: dict[str, Any], where: str) -> None:
    """Refuse, before anything is written, a Wasm container's spec that runc would refuse
    to decode or that its container could not use."""
    _check(spec, SPEC, "", where)
    process = spec.get("process") or {}
    for index, arg in enumerate(process.get("args") or []):
        check_usable(arg, f"process.args[{index}]", where)
    for index, entry in enumerate(process.get("env") or []):
        check_usable(entry, f"process.env[{index}]", where)
        name, eq, _ = entry.partition("=")
        if not eq:
            raise field_error(where, f"process.env[{index}] {shown(entry)} has no '='")
        if not name:
            raise field_error(where, f"process.env[{index}] {shown(entry)} has an empty name")
    check_usable(process.get("cwd"), "process.cwd", where)
    if process and not (process.get("cwd") or "").startswith("/"):
        # runc's own rule for every process; the rewrite would hide it from runc
        raise field_error(where, "process.cwd must be an absolute path")
    check_usable((spec.get("root") or {}).get("path"), "root.path", where)
    for index, mount in enumerate(spec.get("mounts") or []):
        mount = mount or {}
        if not mount.get("destination"):
            raise field_error(where, f"mounts[{index}].destination is missing")
        check_usable(mount.get("destination"), f"mounts[{index}].destination", where)
        check_usable(mount.get("source"), f"mounts[{index}].source", where)



"""Is a container WebAssembly, and on which engine? (DESIGN.md, "Classification").

In order, the first rule that decides wins:
1. a sandbox (infra) container is Linux;
2. runwasm.io/engine, or run.oci.handler naming an engine, makes it Wasm on that engine;
3. module.wasm.image/variant=compat or run.oci.handler=wasm makes it Wasm;
4. compat-smart / wasm-smart (or the node's `detection = "smart"`, or CRI-O having routed
   the container here by its image platform) sniffs the entrypoint:
   Wasm binary or text -> Wasm, ELF or `#!` -> Linux, anything else -> an error;
5. otherwise Linux.
An annotation naming an engine also picks the engine when a smart annotation is set
beside it; then sniffing still decides, so a pod can name its engine once and keep ELF
sidecars working.
"""

from __future__ import annotations

from runwasm import annotations as ann
from runwasm.errors import RunwasmError
from runwasm.handler import rootfs as rootfs_paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runwasm.config import NodeConfig


class Decision:
    __slots__ = ("wasm", "engine", "reason", "module", "host_module", "kind")

    def __init__(self, wasm: bool, reason: str, *, engine: str = "", module: str = "",
                 host_module: str = "", kind: str = "") -> None:
        self.wasm = wasm
        self.reason = reason
        self.engine = engine
        self.module = module  # path as the container sees it
        self.host_module = host_module
        self.kind = kind  # wasmfile kind


def _value(annotations: dict[str, str], key: str, allowed: tuple[str, ...]) -> str | None:
    value = annotations.get(key)
    if value is None:
        return None
    value = value.strip()
    if value not in allowed:
        raise RunwasmError(
            f"invalid annotation {key}={ann.shown(value)}: expected one of {', '.join(allowed)}"
        )
    return value


def _engine_annotation(annotations: dict[str, str]) -> str | None:
    value = annotations.get(ann.ENGINE)
    if value is None:
        return None
    value = value.strip()
    from runwasm.engines import BUILTIN

    if value == ann.DEFAULT_ENGINE or value in BUILTIN:
        return value
    from runwasm.engines.registry import names  # third-party adapters: scan entry points

    known = names()
    if value not in known:
        raise RunwasmError(f"invalid annotation {ann.ENGINE}={ann.shown(value)}: unknown engine "
                           f"(known: {', '.join([ann.DEFAULT_ENGINE, *known])})")
    return value


def _engine(name: str, config: NodeConfig) -> str:
    return config.default_engine if name == "wasm" else name


def classify(spec: dict[str, Any], rootfs: str, config: NodeConfig) -> Decision:
    annotations = spec.get("annotations") or {}
    for key in ann.SANDBOX_KEYS:
        if annotations.get(key) == "sandbox":
            return Decision(False, f"{key}=sandbox")

    engine = _engine_annotation(annotations)
    handler = _value(annotations, ann.HANDLER, ann.HANDLER_VALUES)
    variant = _value(annotations, ann.VARIANT, ann.VARIANT_VALUES)
    smart_by = None
    if variant == "compat-smart":
        smart_by = f"{ann.VARIANT}=compat-smart"
    elif handler == "wasm-smart":
        smart_by = f"{ann.HANDLER}=wasm-smart"
    forced_by = None
    if engine is not None:
        forced_by = f"{ann.ENGINE}={engine}"
    elif handler in ann.ENGINE_NAMES:
        forced_by, engine = f"{ann.HANDLER}={handler}", handler
    elif variant == "compat":
        forced_by = f"{ann.VARIANT}=compat"
    elif handler == "wasm":
        forced_by = f"{ann.HANDLER}=wasm"
    if smart_by is None and forced_by is None:
        smart_by = _platform_routed(annotations)
    if smart_by is None and forced_by is None and config.detection == "smart":
        smart_by = f"detection=smart in {config.path}"
    chosen = _engine(engine or "wasm", config)

    names_engine = engine is not None
    if smart_by is not None and (forced_by is None or names_engine):
        why = smart_by if forced_by is None else f"{forced_by}, {smart_by}"
        return _sniff(spec, rootfs, chosen, why)
    if forced_by is not None:
        return _forced(spec, rootfs, chosen, forced_by)
    return Decision(False, "no Wasm annotation")


# CRI-O's platform_runtime_paths mode (configs/crio/10-runwasm-platform.conf): the default
# runc handler sends `create` for an image whose platform is wasi/wasm32 (or wasi/wasm) to
# the path configured for that platform, and strips module.wasm.image/variant unless the
# handler allows it. CRI-O records the chosen path in this annotation (the older key first,
# the newer second) on every container, as an empty string when no platform matched. So a
# non-empty value on a `create` that reached runwasm means CRI-O routed this container here
# by its image platform, whatever the path names: runwasm itself, a symlink, or a wrapper
# (a logging shim, `env`, a shell script) that execs runwasm. Comparing the path with our
# own file would miss every wrapper. The entrypoint is sniffed as with compat-smart, so an
# ELF or script entrypoint still goes to runc untouched.
PLATFORM_RUNTIME_PATH_KEYS = ("io.kubernetes.cri-o.PlatformRuntimePath",
                              "platform-runtime-path.crio.io")


def _platform_routed(annotations: dict[str, str]) -> str | None:
    """The reason to sniff when CRI-O chose a platform runtime path, else None."""
    for key in PLATFORM_RUNTIME_PATH_KEYS:
        value = annotations.get(key)
        if value and value.strip():
            return f"{key}={value}"
    return None


def _entrypoint(fields: tuple[list[str], str, list[str]], rootfs: str
                ) -> tuple[str, str] | None:
    """(its container path, its host path) for (process.args, cwd, env), if it exists."""
    args, cwd, env = fields
    if not args:
        return None
    try:
        found = rootfs_paths.find_program(rootfs, args[0], cwd, env)
        if found is None:
            return None
        return found, rootfs_paths.resolve(rootfs, found)
    except OSError as e:
        raise RunwasmError(f"resolve entrypoint {ann.shown(args[0], quote=False)} in the "
                           f"image: {e.strerror}") from None


def _sniff(spec: dict[str, Any], rootfs: str, engine: str, why: str) -> Decision:
    from runwasm import wasmfile  # (not on the path of a container without annotations)
    from runwasm.handler.spec_fields import entrypoint_fields

    entry = _entrypoint(entrypoint_fields(spec), rootfs)
    if entry is None:
        return Decision(False, f"{why}: entrypoint not found in the image, left to runc")
    module, host = entry
    try:
        kind = wasmfile.sniff_file(host)
    except OSError as e:
        raise RunwasmError(f"read entrypoint {module}: {e.strerror}") from None
    if kind in (*wasmfile.WASM_KINDS, wasmfile.PRECOMPILED):
        return Decision(True, f"{why}: {module} is Wasm ({kind})", engine=engine,
                        module=module, host_module=host, kind=kind)
    if kind in (wasmfile.ELF, wasmfile.SCRIPT):
        return Decision(False, f"{why}: {module} is {'ELF' if kind == 'elf' else 'a script'}")
    raise RunwasmError(
        f"{why}: entrypoint {module} is neither WebAssembly nor an ELF executable or script"
    )


def _forced(spec: dict[str, Any], rootfs: str, engine: str, why: str) -> Decision:
    from runwasm import wasmfile
    from runwasm.handler.spec_fields import entrypoint_fields

    fields = entrypoint_fields(spec)
    args = fields[0]
    if not args:
        raise RunwasmError(f"{why}: process.args is empty, no module to run")
    entry = _entrypoint(fields, rootfs)
    if entry is None:
        raise RunwasmError(f"{why}: module {ann.shown(args[0], quote=False)} not found in the "
                           "image")
    module, host = entry
    try:
        kind = wasmfile.sniff_file(host)
    except OSError as e:
        raise RunwasmError(f"{why}: read module {module}: {e.strerror}") from None
    if kind not in (*wasmfile.WASM_KINDS, wasmfile.PRECOMPILED):
        what = {"elf": "an ELF executable", "script": "a script"}.get(kind, "not WebAssembly")
        hint = "" if kind == wasmfile.UNKNOWN else (
            f" (use {ann.VARIANT}=compat-smart to run it with runc)")
        raise RunwasmError(f"{why}: {module} is {what}{hint}")
    return Decision(True, f"{why}: {module} ({kind})", engine=engine, module=module,
                    host_module=host, kind=kind)

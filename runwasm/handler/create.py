"""`create` and `run`: classify, and for a Wasm container rewrite config.json in place.

A Linux container's config.json is never written. For a Wasm container the original is
kept as .runwasm/config.orig.json (so a bundle can be created again), and any failure
before runc takes over restores the bundle exactly.

No file with written-out blocks is freed on the way: the original is kept by a second
name, not copied, and a view already in place is not written again. On ext4 mounted with
`discard` (as on this project's VMs), freeing written blocks waits for the disk to
discard them, 0.3-0.7 ms here and more on a busy host; and renaming over an existing
file makes ext4 write the new one out at once (auto_da_alloc), so a view replaced by the
next create of the same bundle was always written out.
"""

from __future__ import annotations

import os

from runwasm import annotations as ann
from runwasm import jsonfast
from runwasm.errors import RunwasmError
from runwasm.files import open_regular, write_atomic
from runwasm.handler import classify as classification
from runwasm.handler import spec_fields

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from runwasm.config import NodeConfig
    from runwasm.engines.base import Engine, EngineSettings, Installation
    from runwasm.handler.classify import Decision
    from runwasm.handler.log import Log
    from runwasm.plan import Limits
    from runwasm.wasmfile import Interface

# The annotations classification reads, for every container.
CLASSIFY_KEYS: Final = (ann.ENGINE, ann.VARIANT, ann.HANDLER, *ann.SANDBOX_KEYS,
                        *classification.PLATFORM_RUNTIME_PATH_KEYS)


# The bundle's own runwasm state (the engine view): kept here, not in engine_view, so a
# Linux create never imports the engine view, the engines or the plan.
STATE_DIR: Final = ".runwasm"  # inside the bundle
SKELETON: Final = "root"  # the launcher's root.path, under STATE_DIR
ORIGINAL: Final = "config.orig.json"  # the caller's config.json, under STATE_DIR


class Bundle:
    __slots__ = ("path", "config_path", "state_dir", "original_path")

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.config_path = os.path.join(self.path, "config.json")
        self.state_dir = os.path.join(self.path, STATE_DIR)
        self.original_path = os.path.join(self.state_dir, ORIGINAL)

    def read_config(self) -> tuple[bytes, bytes | None]:
        """(config.json bytes, the original's bytes when config.json is our rewrite)."""
        try:
            with open_regular(self.config_path) as f:
                raw = f.read()
        except OSError as e:
            raise RunwasmError(f"read {self.config_path}: {e.strerror}") from None
        skeleton = os.path.join(self.state_dir, SKELETON)
        if os.path.isfile(self.original_path) and skeleton.encode() in raw:
            with open(self.original_path, "rb") as f:
                return raw, f.read()
        return raw, None

    def keep_original(self, raw: bytes) -> None:
        """Keep the caller's config.json (`raw`) as ORIGINAL: a second name for the same
        file, so nothing is written and replacing config.json frees nothing; a copy
        where the filesystem cannot link."""
        try:
            os.unlink(self.original_path)  # from an earlier create the caller overwrote
        except FileNotFoundError:
            pass
        try:
            os.link(self.config_path, self.original_path, follow_symlinks=False)
        except OSError:
            write_atomic(self.original_path, raw)

    def put_back(self) -> None:
        """Move the original back over our rewrite, and drop runwasm's state."""
        os.replace(self.original_path, self.config_path)
        remove_tree(self.state_dir)


def load_spec(raw: bytes, where: str) -> dict[str, Any]:
    try:
        # As runc's decoder does, bytes that are not UTF-8 become U+FFFD.
        spec = jsonfast.loads(jsonfast.decode(raw, "replace"))
    except ValueError as e:
        raise RunwasmError(f"parse {where}: {e}") from None
    if not isinstance(spec, dict):
        raise RunwasmError(f"parse {where}: not a JSON object")
    return spec


def rootfs_of(spec: dict[str, Any], bundle: str, where: str = "config.json") -> str:
    """The host path of the image root: root.path, relative to the bundle (as runc has it,
    an empty one is the bundle itself)."""
    return os.path.normpath(os.path.join(bundle, spec_fields.root_path(spec, where)))


def prepare(bundle_dir: str, config: NodeConfig, log: Log, *, root: str = "",
            container_id: str = "") -> Decision:
    """Classify the bundle's container; for Wasm, leave the engine view in the bundle.

    Everything runwasm refuses is refused before anything is written; `root` and
    `container_id` (when given) are checked as runc would check them.
    """
    bundle = Bundle(bundle_dir)
    current, original = bundle.read_config()
    raw = original if original is not None else current
    where = bundle.config_path
    spec = load_spec(raw, where)
    spec_fields.checked_annotations(spec, CLASSIFY_KEYS, where)
    rootfs = rootfs_of(spec, bundle.path, where)
    decision = classification.classify(spec, rootfs, config)
    log.info(f"runwasm: {'wasm' if decision.wasm else 'linux'}: {decision.reason}")
    if (decision.wasm or original is not None) and container_id:
        from runwasm.handler import wasm_checks

        wasm_checks.check_id(root, container_id)
    if not decision.wasm:
        if original is not None:  # a bundle we rewrote earlier, now Linux: put it back
            bundle.put_back()
        return decision
    from runwasm.handler import engine_view, spec_schema, wasm_checks

    spec_schema.check(spec, where)
    invoke, interface = _check_module(decision, config, spec)
    runner = resolve_engine(decision, spec, config, invoke)
    wasm_checks.check_imports(decision, runner, interface)
    wasm_checks.check_written_paths(bundle)
    runner.artifact = _artifact(decision, runner, config, log)
    log.info(f"runwasm: engine {decision.engine} {runner.installation.version}".rstrip())
    changes = engine_view.Changes()
    state_existed = os.path.isdir(bundle.state_dir)
    wrote_config = False
    try:
        new_spec = engine_view.rewrite(spec, bundle.path, rootfs, decision, runner, changes)
        wasm_checks.check_exec_sizes(new_spec["process"], where)
        view = jsonfast.dumps(new_spec).encode()
        if original is None:
            bundle.keep_original(raw)
        if view != current:  # the same bundle created again: usually the same view
            wrote_config = True
            write_atomic(bundle.config_path, view)
    except BaseException as e:
        changes.undo()
        if wrote_config:
            write_atomic(bundle.config_path, current)
        if not state_existed:
            remove_tree(bundle.state_dir)
        if isinstance(e, OSError) and e.strerror:
            on = f": {ann.shown(e.filename, quote=False)}" if e.filename else ""
            raise RunwasmError(f"prepare engine view in {bundle.path}: {e.strerror}{on}"
                               ) from None
        if isinstance(e, (OSError, ValueError)):
            raise RunwasmError(f"prepare engine view in {bundle.path}: {e}") from None
        raise
    return decision


def restore(bundle_dir: str) -> None:
    """Undo prepare() for a Wasm container runc never got (e.g. no delegate)."""
    try:
        Bundle(bundle_dir).put_back()
    except OSError:
        pass  # nothing to put back (or it cannot be): runc's own error is what counts


def _check_module(decision: Decision, config: NodeConfig, spec: dict[str, Any]
                  ) -> tuple[str, Interface | None]:
    """Refuse what cannot run; (the reactor export to invoke, if the pod names one, and
    a core module's interface)."""
    from runwasm import wasmfile
    from runwasm.limits import INVOKE

    invoke = ((spec.get("annotations") or {}).get(INVOKE) or "").strip()
    if decision.kind == wasmfile.PRECOMPILED and not config.allow_image_artifacts:
        raise RunwasmError(
            f"{decision.module} is a precompiled artifact: refused (loading engine code from "
            f"an image runs it; cache.allow_image_artifacts in {config.path} allows it)")
    if decision.kind != wasmfile.MODULE:
        return invoke, None  # text is compiled, and components are checked, by the engine
    interface = wasmfile.read_interface(decision.host_module, decision.module)
    exports = interface.exports
    if invoke:
        if invoke not in exports:
            raise RunwasmError(f"invalid annotation {INVOKE}={ann.shown(invoke)}: module "
                               f"{decision.module} exports no function {ann.shown(invoke)}")
        return invoke, interface
    if "_start" not in exports:
        what = (f" (a reactor module: it exports _initialize; name the export to run with "
                f"{INVOKE})") if "_initialize" in exports else ""
        raise RunwasmError(f"module {decision.module} exports no _start function{what}")
    return "", interface


def resolve_engine(decision: Decision, spec: dict[str, Any], config: NodeConfig,
                   invoke: str = "") -> Runner:
    """The engine adapter, where it is installed, and what the pod asks of it.

    Fails when the engine is unknown or not installed, or lacks what the pod asks for.
    Only the adapter's module is imported, never the engine itself.
    """
    from runwasm import limits as pod_limits
    from runwasm import wasmfile
    from runwasm.engines import base, import_paths, registry

    name = decision.engine
    settings = registry.settings_for(config.engines, name)
    try:
        adapter = registry.load(name)
        installation = adapter.locate(settings)
    except base.EngineError as e:
        raise RunwasmError(str(e)) from None
    supported = adapter.supported(installation)
    limits, asked, sockets = pod_limits.requested(spec)
    needs = {pod_limits.MAX_MEMORY: base.MAX_MEMORY, pod_limits.TIMEOUT: base.TIMEOUT,
             pod_limits.FUEL: base.FUEL}
    lacking = [f"{needs[key]} (asked by {key})" for key in asked if needs[key] not in supported]
    if sockets and base.SOCKETS not in supported:
        lacking.append(f"{base.SOCKETS} (asked by {pod_limits.SOCKETS})")
    if invoke and base.INVOKE not in supported:
        lacking.append(f"{base.INVOKE} (asked by {pod_limits.INVOKE})")
    if decision.kind == wasmfile.COMPONENT and base.COMPONENTS not in supported:
        lacking.append(f"{base.COMPONENTS} ({decision.module} is a component)")
    if lacking:
        raise RunwasmError(f"engine {name} lacks {', '.join(lacking)}")
    if limits.max_memory is None and base.MAX_MEMORY in supported:
        limits.max_memory = pod_limits.cgroup_memory_limit(spec)
    runner = Runner(name, adapter, settings, installation, limits, sockets,
                    import_paths.import_root(name))
    runner.invoke = invoke
    return runner


def _artifact(decision: Decision, runner: Runner, config: NodeConfig, log: Log) -> str:
    """The precompiled artifact the launcher loads: from the cache, or (where the node
    allows it) the image's own; "" to compile in the launcher."""
    from runwasm import wasmfile
    from runwasm.cache import Cache
    from runwasm.engines import base

    adapter = runner.adapter
    if decision.kind == wasmfile.PRECOMPILED:
        if not runner.name.startswith("wasmtime"):
            raise RunwasmError(f"{decision.module} is a Wasmtime artifact; engine "
                               f"{runner.name} cannot load it")
        return decision.host_module
    if decision.kind != wasmfile.MODULE or base.PRECOMPILE not in adapter.supported(
            runner.installation):
        return ""
    found = Cache(config).artifact_for(adapter, runner.installation, decision.host_module,
                                       decision.module, runner.limits)
    if found is None:
        return ""
    path, compiled = found
    log.info(f"runwasm: cache {'miss: compiled' if compiled else 'hit:'} {decision.module} "
             f"-> {os.path.basename(path)}")
    return path


class Runner:
    """Everything engine-specific the engine view needs."""

    __slots__ = ("adapter", "name", "settings", "installation", "limits", "sockets",
                 "adapter_root", "artifact", "invoke")

    def __init__(self, name: str, adapter: Engine, settings: EngineSettings,
                 installation: Installation, limits: Limits, sockets: bool,
                 adapter_root: str | None) -> None:
        self.adapter = adapter
        self.name = name  # as registered (the launcher loads the adapter by this name)
        self.settings = settings
        self.installation = installation
        self.limits = limits
        self.sockets = sockets
        self.adapter_root = adapter_root  # a third-party adapter's import root
        self.artifact = ""  # host path of the precompiled module to load, if any
        self.invoke = ""  # a reactor module's export to run


def remove_tree(path: str) -> None:
    """rm -r without following symlinks (shutil costs ~20 ms to import)."""
    if not os.path.lexists(path):
        return
    for parent, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(parent, name))
        for name in dirs:
            full = os.path.join(parent, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)
    os.rmdir(path)

"""`runwasm install crio|containerd`: write or update the runtime configuration of a node.

Files are edited with tomlkit: comments, ordering and everything not runwasm's stay as
they were, and running the verb again changes nothing. Only the file named (or the
default drop-in) is written, atomically; the service is never restarted, only reminded.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

import typer

from runwasm.errors import RunwasmError

CRIO_DROPIN_DIR = "/etc/crio/crio.conf.d"
CRIO_DROPIN = "10-runwasm.conf"
CRIO_PLATFORM_DROPIN = "10-runwasm-platform.conf"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
HANDLER = "runwasm"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The annotations a Wasm handler lets through CRI-O's filter. CRI-O accepts only entries
# of its own fixed list in allowed_annotations and drops the whole handler otherwise.
CRIO_WASM_ANNOTATIONS = ("module.wasm.image/variant", "run.oci.")
# CRI-O's fixed list (pkg/annotations AllAllowedAnnotations, old and new names), for
# checking a handler; an entry outside it makes CRI-O ignore the handler.
CRIO_ALLOWED_ANNOTATIONS = frozenset({
    "module.wasm.image/variant", "io.kubernetes.cri.container-type", "run.oci.",
    "bundle", "org.systemd.property.", "org.criu.config", "io.kubernetes.cri.rdt-class",
    "io.containers.trace-syscall", "cpu-load-balancing.crio.io", "cpu-quota.crio.io",
    "irq-load-balancing.crio.io", "cpu-c-states.crio.io", "cpu-freq-governor.crio.io",
    "cpu-shared.crio.io",
    "io.kubernetes.cri-o.userns-mode", "io.kubernetes.cri-o.cgroup2-mount-hierarchy-rw",
    "io.kubernetes.cri-o.UnifiedCgroup", "io.kubernetes.cri-o.ShmSize",
    "io.kubernetes.cri-o.Devices", "io.kubernetes.cri-o.TrySkipVolumeSELinuxLabel",
    "io.kubernetes.cri-o.seccompNotifierAction", "io.kubernetes.cri-o.umask",
    "io.kubernetes.cri-o.PodLinuxOverhead", "io.kubernetes.cri-o.PodLinuxResources",
    "io.kubernetes.cri-o.LinkLogs", "io.kubernetes.cri-o.DisableFIPS",
    "io.kubernetes.cri-o.PlatformRuntimePath", "io.kubernetes.cri-o.Spoofed",
    "seccomp-profile.kubernetes.cri-o.io",
    "userns-mode.crio.io", "cgroup2-mount-hierarchy-rw.crio.io", "unified-cgroup.crio.io",
    "shm-size.crio.io", "devices.crio.io", "try-skip-volume-selinux-label.crio.io",
    "seccomp-notifier-action.crio.io", "umask.crio.io", "pod-linux-overhead.crio.io",
    "pod-linux-resources.crio.io", "link-logs.crio.io", "disable-fips.crio.io",
    "platform-runtime-path.crio.io", "spoofed.crio.io", "seccomp-profile.crio.io",
    "stop-signal.crio.io",
})
# Keys of a [crio.runtime.runtimes.NAME] table that CRI-O knows.
CRIO_HANDLER_KEYS = frozenset({
    "runtime_config_path", "runtime_path", "runtime_type", "runtime_root",
    "privileged_without_host_devices", "allowed_annotations", "monitor_path",
    "monitor_cgroup", "monitor_env", "monitor_exec_cgroup", "platform_runtime_paths",
    "runtime_pull_image", "container_min_memory", "no_sync_log", "inherit_default_runtime",
    "default_annotations", "stream_websockets", "exec_cpu_affinity", "seccomp_profile",
    "container_create_timeout",
})
# Image platforms routed to runwasm (os/architecture as the image config states them).
WASM_PLATFORMS = ("wasi/wasm32", "wasi/wasm")
CONTAINERD_POD_ANNOTATIONS = ("module.wasm.image/variant", "run.oci.handler", "runwasm.io/*")
CONTAINERD_CRI_PLUGIN = {2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}

CRIO_HEADER = """\
# CRI-O drop-in: the runtime handler "runwasm" (/etc/crio/crio.conf.d/10-runwasm.conf).
# A pod picks it with a RuntimeClass whose `handler: runwasm` (configs/kubernetes/).
# `runwasm install crio` writes or updates this table; restart CRI-O after any change
# (systemctl restart crio). `runwasm doctor` checks it.
#
# runwasm is runc-compatible: Linux containers of a pod (the pause container, sidecars)
# go to runc untouched; Wasm containers run on a Wasm engine inside runc's isolation.
# CRI-O drops image annotations, so a pod marks its Wasm containers with pod annotations
# (module.wasm.image/variant=compat|compat-smart, runwasm.io/engine=...), or the node
# sniffs every container (`detection = "smart"` in /etc/runwasm/config.toml).
"""
CRIO_HANDLER_TEMPLATE = """
[crio.runtime.runtimes.{handler}]
runtime_path = "{path}"
runtime_type = "oci"
# runwasm hands this root to runc: `runc --root {root} list` shows these containers.
runtime_root = "{root}"
# CRI-O accepts only entries from its own fixed list here and ignores the whole handler
# for any other entry. For Wasm that list has exactly "module.wasm.image/variant" and the
# prefix "run.oci." (which covers run.oci.handler; spelling that key out is refused).
# runwasm.io/ keys must not be listed: CRI-O never filters them, they always pass.
allowed_annotations = [
    "module.wasm.image/variant",
    "run.oci.",
]
# conmon: monitor_path and monitor_cgroup are left out on purpose, so this handler
# inherits [crio.runtime] conmon / conmon_cgroup when set, else CRI-O's defaults (conmon
# from PATH; system.slice under systemd, the pod's cgroup parent under cgroupfs), like the
# default runc handler. monitor_env is the default handler's: runwasm looks for runc here.
monitor_env = [
    "{path_env}",
]
"""
CRIO_PLATFORM_HEADER = """\
# CRI-O drop-in, second way: no RuntimeClass; CRI-O routes Wasm images to runwasm by their
# platform. Copy to /etc/crio/crio.conf.d/10-runwasm-platform.conf (or run
# `runwasm install crio --platform`), then restart CRI-O. Use this file OR 10-runwasm.conf's
# dedicated handler, or both; they do not conflict.
#
# How it works: a container whose image config says os/architecture = wasi/wasm32 (or
# wasi/wasm, what `buildah build --platform wasi/wasm` and `docker buildx --platform
# wasi/wasm` write) is created through runwasm; CRI-O sends only create, exec, update and
# checkpoint to runwasm, and start, state, kill, delete, pause and resume to runc itself
# with the same runtime_root. That works because runwasm makes every Wasm container a
# genuine runc container.
#
# How runwasm knows such a container is Wasm: this handler strips
# module.wasm.image/variant (it is not in allowed_annotations below), but CRI-O records
# the path it chose in the container's annotation platform-runtime-path.crio.io (older
# CRI-O: io.kubernetes.cri-o.PlatformRuntimePath), empty for images of no listed
# platform. A create reaching runwasm with a non-empty value was routed here by platform
# (the path may be runwasm, a symlink, or a wrapper that execs it), so runwasm sniffs
# the entrypoint as with compat-smart: a Wasm module runs on the engine
# (runwasm.io/engine still picks it), an ELF binary or script goes to runc.
#
# CRI-O replaces a runtime table as a whole when a drop-in names it, so this file restates
# the default runc handler as CRI-O defines it and only adds platform_runtime_paths. If
# your crio.conf customises [crio.runtime.runtimes.runc], add platform_runtime_paths there
# instead (`runwasm install crio --platform --file /etc/crio/crio.conf` does that).
"""
CRIO_PLATFORM_TEMPLATE = """
[crio.runtime.runtimes.{handler}]
# Empty: "{handler}" from PATH, as CRI-O's built-in default handler.
runtime_path = ""
runtime_type = "oci"
runtime_root = "/run/{handler}"
allowed_annotations = [
    "io.containers.trace-syscall",
    "io.kubernetes.cri-o.Devices",
]
monitor_env = [
    "{path_env}",
]

[crio.runtime.runtimes.{handler}.platform_runtime_paths]
"wasi/wasm32" = "{path}"
"wasi/wasm" = "{path}"
"""
CONTAINERD_HEADER = """\
# containerd (1.6/1.7, config version 2): the CRI runtime handler "runwasm", merged into
# /etc/containerd/config.toml by `runwasm install containerd`; restart containerd after
# (systemctl restart containerd). A pod picks it with a RuntimeClass `handler: runwasm`.
#
# runwasm runs under containerd's own runc shim (io.containerd.runc.v2) as its runc
# binary; the shim passes --log/--log-format json and reads runwasm's errors from there.
# containerd passes a pod annotation into config.json only when it matches one of
# pod_annotations (path.Match patterns); CRI-O and containerd both drop image annotations.
# containerd 2.x (config version 3) keeps the same table under
# [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runwasm].

version = 2
"""
CONTAINERD_TEMPLATE = """
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{handler}]
runtime_type = "io.containerd.runc.v2"
pod_annotations = [
    "module.wasm.image/variant",
    "run.oci.handler",
    "runwasm.io/*",
]

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{handler}.options]
BinaryName = "{path}"
# Copy SystemdCgroup from the runc handler's options when your node uses systemd cgroups.
# SystemdCgroup = true
"""


def register(app: typer.Typer) -> None:
    install = typer.Typer(
        name="install", no_args_is_help=True, add_completion=False,
        help="Configure CRI-O or containerd on this node to use runwasm (idempotent; "
        "keeps existing content and comments; never restarts a service).")
    install.command("crio", help="Write or update the CRI-O drop-in for runwasm: a "
                    "dedicated handler (default), or --platform routing of wasi/wasm "
                    "images from the default handler.")(crio)
    install.command("containerd", help="Add or update the runwasm runtime in containerd's "
                    "config.toml (runc shim v2 with BinaryName = runwasm).")(containerd)
    app.add_typer(install)


def runwasm_path() -> str:
    """The runwasm being run: what the caller should execute."""
    return os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "/usr/bin/runwasm"


# ---------------------------------------------------------------------------------------
# commands


def crio(
    crio_dir: str = typer.Option(CRIO_DROPIN_DIR, "--crio-dir", help="CRI-O's drop-in "
                                 "directory."),
    file: str = typer.Option("", "--file", help="The file to write or update: a name in "
                             "--crio-dir or a path (e.g. /etc/crio/crio.conf). Default: "
                             f"{CRIO_DROPIN}, or {CRIO_PLATFORM_DROPIN} with --platform."),
    handler: str = typer.Option("", "--handler", help=f"Handler name (default {HANDLER}; "
                                "with --platform: the default handler, runc)."),
    runtime_path: str = typer.Option("", "--runtime-path", help="runwasm's path as CRI-O "
                                     "should run it (default: this runwasm)."),
    platform: bool = typer.Option(False, "--platform", help="Route wasi/wasm32 and "
                                  "wasi/wasm images from the default handler to runwasm "
                                  "(platform_runtime_paths) instead of a dedicated handler."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write "
                                 "nothing."),
) -> None:
    path_value = runtime_path or runwasm_path()
    name = handler or ("runc" if platform else HANDLER)
    target = _target(crio_dir, file or (CRIO_PLATFORM_DROPIN if platform else CRIO_DROPIN))
    if platform:
        changes = _edit(target, CRIO_PLATFORM_HEADER, CRIO_PLATFORM_TEMPLATE,
                        lambda doc: ensure_crio_platform(doc, name, path_value),
                        handler=name, path=path_value, dry_run=dry_run)
    else:
        changes = _edit(target, CRIO_HEADER, CRIO_HANDLER_TEMPLATE,
                        lambda doc: ensure_crio_handler(doc, name, path_value),
                        handler=name, path=path_value, dry_run=dry_run)
    _report(target, changes, dry_run, "CRI-O", "systemctl restart crio")
    if platform and changes and name != "runc":
        typer.echo(f"Note: runwasm hands containers to its delegate runtime; make it "
                   f"{name} (runtime.delegate in /etc/runwasm/config.toml), since CRI-O "
                   f"runs {name} itself for start, state, kill and delete.")


def containerd(
    config: str = typer.Option(CONTAINERD_CONFIG, "--containerd-config",
                               help="containerd's config.toml."),
    handler: str = typer.Option(HANDLER, "--handler", help="Runtime (handler) name."),
    runtime_path: str = typer.Option("", "--runtime-path", help="runwasm's path as the "
                                     "shim should run it (default: this runwasm)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write "
                                 "nothing."),
) -> None:
    path_value = runtime_path or runwasm_path()
    target = os.path.abspath(config)
    changes = _edit(target, CONTAINERD_HEADER, CONTAINERD_TEMPLATE,
                    lambda doc: ensure_containerd(doc, handler, path_value, target),
                    handler=handler, path=path_value, dry_run=dry_run)
    _report(target, changes, dry_run, "containerd", "systemctl restart containerd")


# ---------------------------------------------------------------------------------------
# the edits (pure functions on tomlkit documents; each returns what it changed)


def ensure_crio_handler(doc: Any, handler: str, path: str) -> list[str]:
    """The dedicated handler table, with runwasm's settings; other keys are kept."""
    table = _table(doc, ("crio", "runtime", "runtimes", handler))
    where = f"[crio.runtime.runtimes.{handler}]"
    changes: list[str] = []
    _set(table, "runtime_path", path, where, changes)
    _set(table, "runtime_type", "oci", where, changes)
    _set_default(table, "runtime_root", f"/run/{handler}", where, changes)
    _ensure_list(table, "allowed_annotations", CRIO_WASM_ANNOTATIONS, where, changes,
                 refused=_crio_refused)
    _set_default(table, "monitor_env", _multiline([DEFAULT_PATH_ENV]), where, changes)
    return changes


def ensure_crio_platform(doc: Any, handler: str, path: str) -> list[str]:
    """platform_runtime_paths on the default handler, which is restated if it is new."""
    runtimes = _table(doc, ("crio", "runtime", "runtimes"), leaf=False)
    where = f"[crio.runtime.runtimes.{handler}]"
    changes: list[str] = []
    if handler not in runtimes:
        import tomlkit

        table = tomlkit.table()
        table["runtime_path"] = ""
        table["runtime_type"] = "oci"
        table["runtime_root"] = f"/run/{handler}"
        table["allowed_annotations"] = _multiline(["io.containers.trace-syscall",
                                                   "io.kubernetes.cri-o.Devices"])
        table["monitor_env"] = _multiline([DEFAULT_PATH_ENV])
        runtimes[handler] = table
        changes.append(f"{where} added (CRI-O's default handler, restated)")
    table = runtimes[handler]
    paths = table.get("platform_runtime_paths")
    if paths is None:
        import tomlkit

        paths = tomlkit.table()
        table["platform_runtime_paths"] = paths
    for platform in WASM_PLATFORMS:
        if paths.get(platform) != path:
            paths[platform] = path
            changes.append(f'{where} platform_runtime_paths."{platform}" = "{path}"')
    return changes


def ensure_containerd(doc: Any, handler: str, path: str, where_file: str) -> list[str]:
    version = doc.get("version")
    plugin = CONTAINERD_CRI_PLUGIN.get(version) if isinstance(version, int) else None
    if plugin is None:
        shown = "no version" if version is None else f"version = {version}"
        raise RunwasmError(
            f"install containerd: {where_file} has {shown}; runwasm edits version 2 "
            "(containerd 1.6/1.7) and version 3 (containerd 2.x) configs: migrate it first")
    runtimes = _table(doc, ("plugins", plugin, "containerd", "runtimes"), leaf=False)
    where = f'[plugins."{plugin}".containerd.runtimes.{handler}]'
    changes: list[str] = []
    created = handler not in runtimes
    table = _table(runtimes, (handler,))
    _set(table, "runtime_type", "io.containerd.runc.v2", where, changes)
    _ensure_list(table, "pod_annotations", CONTAINERD_POD_ANNOTATIONS, where, changes)
    options = _table(table, ("options",))
    _set(options, "BinaryName", path, where[:-1] + ".options]", changes)
    runc_options = runtimes.get("runc", {}).get("options", {})
    if "SystemdCgroup" in runc_options and "SystemdCgroup" not in options:
        _set(options, "SystemdCgroup", bool(runc_options["SystemdCgroup"]),
             where[:-1] + ".options]", changes)
    if created:
        changes.insert(0, f"{where} added")
    return changes


# ---------------------------------------------------------------------------------------
# helpers


def _crio_refused(entry: str) -> bool:
    """An allowed_annotations entry CRI-O is known to refuse (it drops the handler)."""
    return (entry.startswith("run.oci.") and entry != "run.oci.") or entry.startswith(
        "runwasm.io/") or (entry.startswith("module.wasm.image/") and
                           entry != "module.wasm.image/variant")


def _target(directory: str, file: str) -> str:
    if os.sep in file:
        return os.path.abspath(file)
    return os.path.abspath(os.path.join(directory, file))


def _table(container: Any, keys: tuple[str, ...], *, leaf: bool = True) -> Any:
    """The nested table at `keys`, creating the missing ones: super tables (no header of
    their own) on the way, and the last one too unless it is a `leaf` holding values."""
    import tomlkit

    current = container
    for i, key in enumerate(keys):
        if key not in current:
            current[key] = tomlkit.table(is_super_table=not leaf or i < len(keys) - 1)
        current = current[key]
        if not hasattr(current, "items"):
            raise RunwasmError(f"{'.'.join(keys[: i + 1])} is not a table")
    return current


def _multiline(values: list[str]) -> Any:
    import tomlkit

    array = tomlkit.array()
    array.extend(values)
    array.multiline(True)
    return array


def _show(value: Any) -> str:
    import tomlkit

    return str(tomlkit.item(value).as_string())


def _set(table: Any, key: str, value: Any, where: str, changes: list[str]) -> None:
    if key in table and table[key] == value:
        return
    old = f" (was {_show(table[key])})" if key in table else ""
    table[key] = value
    changes.append(f"{where} {key} = {_show(value)}{old}")


def _set_default(table: Any, key: str, value: Any, where: str, changes: list[str]) -> None:
    if key not in table:
        table[key] = value
        changes.append(f"{where} {key} = {_show(value)}")


def _ensure_list(table: Any, key: str, wanted: tuple[str, ...], where: str,
                 changes: list[str], refused: Callable[[str], bool] | None = None) -> None:
    if key not in table:
        table[key] = _multiline(list(wanted))
        changes.append(f"{where} {key} = {_show(list(wanted))}")
        return
    current = table[key]
    if not isinstance(current, list):
        raise RunwasmError(f"{where} {key} is not a list")
    if refused is not None:
        for entry in [e for e in current if isinstance(e, str) and refused(e)]:
            current.remove(entry)
            changes.append(f"{where} {key}: removed {entry!r} (CRI-O refuses it and "
                           "would ignore the whole handler)")
    for entry in wanted:
        if entry not in current:
            current.append(entry)
            changes.append(f"{where} {key}: added {entry!r}")


def _edit(target: str, header: str, template: str, ensure: Callable[[Any], list[str]], *,
          handler: str, path: str, dry_run: bool) -> list[str]:
    """Apply `ensure` to the file (created from header + template when missing or empty);
    write it when something changed. Returns the changes."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        with open(target, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as e:
        raise RunwasmError(f"read {target}: {getattr(e, 'strerror', None) or e}") from None
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as e:
        raise RunwasmError(f"{target}: invalid TOML: {e}") from None
    fresh = not text.strip()
    if fresh:
        doc = tomlkit.parse(header + template.format(handler=handler, path=_escape(path),
                                                     root=f"/run/{handler}",
                                                     path_env=DEFAULT_PATH_ENV))
    changes = ensure(doc)
    if fresh:
        changes = [f"created from runwasm's template ({handler}, {path})", *changes]
    new_text = tomlkit.dumps(doc)
    if new_text == text:
        return []
    if not dry_run:
        _write(target, new_text)
    return changes


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _write(path: str, text: str) -> None:
    from runwasm.files import write_atomic

    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        write_atomic(path, text.encode())
    except OSError as e:
        raise RunwasmError(f"write {path}: {e.strerror}") from None


def _report(target: str, changes: list[str], dry_run: bool, service: str,
            restart: str) -> None:
    if not changes:
        typer.echo(f"{target}: already up to date, nothing changed")
        return
    verb = "would change" if dry_run else "changed"
    typer.echo(f"{target}: {verb}:")
    for change in changes:
        typer.echo(f"  {change}")
    if dry_run:
        typer.echo("Dry run: nothing written.")
    else:
        typer.echo(f"Restart {service} to apply: {restart}")

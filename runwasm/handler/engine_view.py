"""Rewrite a Wasm container's spec into the engine view (DESIGN.md, "The engine view").

runc still applies every isolation in the spec; only the filesystem layout and the
process change:
- root.path becomes a skeleton directory in the bundle, read-only, where the host's
  system directories (and the interpreter and packages the launcher needs, when they
  live elsewhere) are bind-mounted read-only at their usual paths;
- the image rootfs is bind-mounted at APP_ROOT (read-only if root.readonly), and every
  mount except /proc, /sys and /dev's own moves under it (the cgroup filesystem is
  left out: LEFT_OUT), with its destination
  resolved inside the image as runc would resolve it (an image symlink can never send
  a volume onto the launcher's files);
- name-service files also go to the skeleton's /etc, for the engine;
- process.args becomes the launcher with a plan; the guest's cwd goes into the plan.
"""

from __future__ import annotations

import os
import sys

from runwasm.engines.base import MODULE_NAMES
from runwasm.handler import rootfs as rootfs_paths
from runwasm.handler.create import SKELETON, STATE_DIR
from runwasm.plan import APP_ROOT, Plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from runwasm.handler.classify import Decision
    from runwasm.handler.create import Runner

ARTIFACT: Final = "/.runwasm/module.cwasm"  # where the launcher finds a cached artifact

SYSTEM_DIRS: Final = ("usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin")
# Mounts that stay where the spec puts them: the launcher needs them, the guest never
# sees them (WASI has no /proc, /sys or /dev).
KEPT_MOUNTS: Final = ("/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")
# Left out of the view: the cgroup filesystem. Neither the launcher nor an engine reads it
# (limits come from the spec, and runc applies them), the guest cannot see /sys at all,
# and on a cgroup v1 node runc builds it from a tmpfs and a bind mount per hierarchy:
# 4-5 ms of CPU in every start on this project's VMs.
LEFT_OUT: Final = "/sys/fs/cgroup"
NAME_SERVICE: Final = ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")
HOST_ETC_FILES: Final = ("/etc/ld.so.cache",)
_RO_BIND: Final = ["rbind", "ro", "nosuid", "nodev"]

BOOT: Final = "import sys;sys.path[:0]=%r;from runwasm.launcher.main import main;main()"


class Changes:
    """Paths created outside the skeleton, removed again if the create fails."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def undo(self) -> None:
        for path in reversed(self.created):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)
                else:
                    os.unlink(path)
            except OSError:
                pass
        self.created.clear()


def _is_kept(destination: str) -> bool:
    dest = os.path.normpath(destination)
    return dest in KEPT_MOUNTS or dest.startswith(("/proc/", "/sys/"))


def _is_left_out(destination: str) -> bool:
    dest = os.path.normpath(destination)
    return dest == LEFT_OUT or dest.startswith(LEFT_OUT + "/")


def launcher_paths(runner: Runner) -> tuple[str, list[str]]:
    """The interpreter the launcher runs on and the import path it needs."""
    from runwasm.engines.import_paths import import_path

    installation = runner.installation
    interpreter = installation.interpreter or os.path.realpath(sys.executable)
    return interpreter, import_path(runner.adapter_root, installation)


def _host_binds(interpreter: str, import_paths: list[str], extra: tuple[str, ...]
                ) -> list[str]:
    """Host directories outside SYSTEM_DIRS the launcher needs, outermost first."""
    prefix = os.path.realpath(sys.base_prefix)
    wanted = [prefix, os.path.dirname(os.path.dirname(interpreter)), *import_paths, *extra]
    binds: list[str] = []
    for path in sorted({_through_system_links(p) for p in wanted}, key=len):
        if path.strip("/").split("/")[0] in SYSTEM_DIRS:
            continue  # under /usr or a real /lib: already bound
        if any(path == b or path.startswith(b + "/") for b in binds):
            continue
        if os.path.isdir(path):
            binds.append(path)
    return binds


def _through_system_links(path: str) -> str:
    """A path under a system directory that is a symlink (/lib -> usr/lib) as the
    skeleton's copy of that link resolves it."""
    top = path.strip("/").split("/")[0]
    return os.path.realpath(path) if top in SYSTEM_DIRS and os.path.islink("/" + top) \
        else path


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _touch(path: str) -> None:
    _mkdirs(os.path.dirname(path))
    if not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def build_skeleton(skeleton: str, host_binds: list[str], etc_files: list[str]) -> list[
        dict[str, Any]]:
    """Create the skeleton directory; the bind mounts that fill it."""
    _mkdirs(skeleton)
    mounts: list[dict[str, Any]] = []
    for name in SYSTEM_DIRS:
        host = "/" + name
        target = os.path.join(skeleton, name)
        if os.path.islink(host):
            if not os.path.lexists(target):
                os.symlink(os.readlink(host), target)
        elif os.path.isdir(host):
            _mkdirs(target)
            mounts.append({"destination": host, "type": "bind", "source": host,
                           "options": list(_RO_BIND)})
    for path in host_binds:
        _mkdirs(skeleton + path)
        mounts.append({"destination": path, "type": "bind", "source": path,
                       "options": list(_RO_BIND)})
    for name in ("proc", "sys", "dev", "etc", "tmp", APP_ROOT.strip("/")):
        _mkdirs(os.path.join(skeleton, name))
    for path in etc_files:
        _touch(skeleton + path)
    return mounts


def _link_module_name(skeleton: str, name: str, target: str) -> None:
    """The launcher-side symlink MODULE_NAMES/name -> target, for an engine that takes
    the guest's argv[0] from the module's file name."""
    if not name:
        return
    directory = skeleton + MODULE_NAMES
    _mkdirs(directory)
    link = os.path.join(directory, name)
    if os.path.lexists(link):  # a create again on the same bundle
        os.unlink(link)
    os.symlink(target, link)


def _precreate(rootfs: str, destination: str, source_is_file: bool, changes: Changes) -> None:
    """Create a missing mountpoint inside a read-only image root, as runc would."""
    host = rootfs_paths.resolve(rootfs, destination)
    if os.path.lexists(host):
        return
    missing = []
    parent = host
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for path in reversed(missing):
        if path == host and source_is_file:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        else:
            os.mkdir(path, 0o755)
        changes.created.append(path)


def inside(rootfs: str, host_path: str) -> str:
    """The launcher-side path of a host path inside the image rootfs."""
    relative = os.path.relpath(host_path, rootfs)
    return APP_ROOT if relative == "." else APP_ROOT + "/" + relative


def rewrite(spec: dict[str, Any], bundle: str, rootfs: str, decision: Decision,
            runner: Runner, changes: Changes) -> dict[str, Any]:
    """The engine-view spec. Creates the skeleton (and, for a read-only image root,
    missing mountpoints in the image, recorded in `changes`)."""
    process = dict(spec.get("process") or {})
    root = spec.get("root") or {}
    readonly = bool(root.get("readonly"))
    mounts = [m for m in spec.get("mounts") or [] if not _is_left_out(m.get("destination", ""))]

    interpreter, import_paths = launcher_paths(runner)
    host_binds = _host_binds(interpreter, import_paths, runner.installation.host_paths)
    etc_files = [m["destination"] for m in mounts
                 if os.path.normpath(m.get("destination", "")) in NAME_SERVICE]
    etc_files += [p for p in HOST_ETC_FILES if os.path.isfile(p)]
    skeleton = os.path.join(bundle, STATE_DIR, SKELETON)
    system_mounts = build_skeleton(skeleton, host_binds, etc_files)
    artifact = ""
    if runner.artifact and not runner.artifact.startswith(rootfs + "/"):
        # From the cache: this one file, read-only (not noexec: its code is mapped
        # executable), at a path the guest cannot reach.
        artifact = ARTIFACT
        _touch(skeleton + ARTIFACT)
        system_mounts.append({"destination": ARTIFACT, "type": "bind",
                              "source": runner.artifact,
                              "options": ["bind", "ro", "nosuid", "nodev"]})
    elif runner.artifact:
        artifact = inside(rootfs, runner.artifact)  # an image artifact the node allows
    module = inside(rootfs, decision.host_module)
    args = list(process.get("args") or [])
    _link_module_name(skeleton, runner.adapter.module_name(args), artifact or module)

    kept = [m for m in mounts if _is_kept(m.get("destination", ""))]
    app = {"destination": APP_ROOT, "type": "bind", "source": rootfs,
           "options": ["rbind", "ro"] if readonly else ["rbind"]}
    moved = []
    for mount in mounts:
        destination = mount.get("destination", "")
        if _is_kept(destination):
            continue
        new = dict(mount)
        new["destination"] = inside(rootfs, rootfs_paths.resolve(rootfs, destination))
        moved.append(new)
        if readonly:
            source = mount.get("source", "")
            is_file = mount.get("type") == "bind" and os.path.isfile(source)
            _precreate(rootfs, destination, is_file, changes)
    name_service = [
        {"destination": m["destination"], "type": "bind", "source": m["source"],
         "options": list(_RO_BIND)}
        for m in mounts
        if os.path.normpath(m.get("destination", "")) in NAME_SERVICE and m.get("source")
    ]
    name_service += [{"destination": p, "type": "bind", "source": p,
                      "options": list(_RO_BIND)}
                     for p in HOST_ETC_FILES if os.path.isfile(p)]

    plan = Plan(engine=decision.engine, module=module, kind=decision.kind, args=args,
                cwd=inside(rootfs, rootfs_paths.resolve(rootfs, process.get("cwd") or "/")),
                readonly=readonly, limits=runner.limits,
                executable=runner.installation.executable,
                options=list(runner.settings.options), sockets=runner.sockets,
                artifact=artifact, invoke=runner.invoke,
                engine_env=list(runner.installation.environment),
                env=list(process.get("env") or []))
    process["args"] = [interpreter, "-I", "-S", "-c", BOOT % import_paths, plan.to_json()]
    process["cwd"] = "/"

    new_spec = dict(spec)
    new_spec["root"] = {"path": skeleton, "readonly": True}
    new_spec["mounts"] = kept + system_mounts + [app] + moved + name_service
    new_spec["process"] = process
    return new_spec

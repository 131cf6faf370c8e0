"""`exec` into a container: Linux containers pass straight through; in a Wasm container
only a Wasm module from the image may run, through the launcher, in the same view.

The rewritten process goes to runc through a memfd (`--process /proc/self/fd/N`), so
nothing is written anywhere and nothing is left behind after the exec.
"""

from __future__ import annotations

import os
import subprocess

from runwasm import jsonfast, wasmfile
from runwasm.errors import RunwasmError
from runwasm.handler import engine_view
from runwasm.handler import rootfs as rootfs_paths
from runwasm.handler.create import Bundle, load_spec, rootfs_of
from runwasm.handler.spec_fields import entrypoint_fields
from runwasm.plan import Plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runwasm.handler.argv import Invocation


def _state(delegate: str, inv: Invocation, container_id: str) -> dict[str, Any] | None:
    """runc's state of the container; None when runc does not know it."""
    global_args = inv.args[: inv.verb_index]
    result = subprocess.run(
        [delegate, *global_args, "state", container_id],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False,
    )
    if result.returncode != 0:
        return None
    try:
        state: dict[str, Any] = jsonfast.loads(result.stdout)
    except ValueError:
        return None
    return state


def wasm_container_spec(delegate: str, inv: Invocation) -> tuple[dict[str, Any], str] | None:
    """(original spec, bundle) when the container is one runwasm rewrote, else None."""
    container_id = inv.container_id
    if not container_id:
        return None
    state = _state(delegate, inv, container_id)
    if state is None or not state.get("bundle"):
        return None
    bundle = Bundle(state["bundle"])
    try:
        _, original = bundle.read_config()
    except RunwasmError:
        return None
    if original is None:
        return None
    return load_spec(original, bundle.original_path), bundle.path


def _requested_process(inv: Invocation, spec: dict[str, Any]) -> dict[str, Any]:
    """The process runc would run: from --process, or from the flags and command."""
    path = inv.option("process")
    if path:
        try:
            with open(path, "rb") as f:
                process = load_spec(f.read(), path)
        except OSError as e:
            raise RunwasmError(f"exec: read process {path}: {e.strerror}") from None
        return process
    process = dict(spec.get("process") or {})
    process["args"] = inv.positionals[1:]
    env = list(process.get("env") or [])
    env.extend(inv.options.get("env", []))
    process["env"] = env
    if inv.option("cwd"):
        process["cwd"] = inv.option("cwd")
    process["terminal"] = inv.flag("tty")
    user = inv.option("user")
    if user:
        uid, _, gid = user.partition(":")
        try:
            process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        except ValueError:
            raise RunwasmError(f"exec: --user {user!r}: expected UID[:GID]") from None
    return process


def rewrite_args(inv: Invocation, container_id: str, process_json: bytes) -> tuple[
        list[str], int]:
    """New argv with the process passed through a memfd; (argv, fd to keep open)."""
    fd = os.memfd_create("runwasm-exec-process", 0)
    os.write(fd, process_json)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    skip: set[int] = set()
    for start, end in inv.option_spans.get("process", []):
        skip.update(range(start, end))
    head = [a for i, a in enumerate(inv.args[: inv.command_index]) if i not in skip]
    if head and head[-1] == "--":
        head.pop()
    id_at = len(head) - 1 - head[::-1].index(container_id)
    verb_at = inv.verb_index
    new = head[: verb_at + 1] + [f"--process=/proc/self/fd/{fd}"] + head[verb_at + 1: id_at + 1]
    return new, fd


def prepare_exec(delegate: str, inv: Invocation) -> list[str] | None:
    """New argv for an exec into a Wasm container; None for any other container."""
    found = wasm_container_spec(delegate, inv)
    if found is None:
        return None
    spec, bundle = found
    container_id = inv.container_id or ""
    process = _requested_process(inv, spec)
    args, cwd, env = entrypoint_fields({"process": process}, inv.option("process") or "exec")
    if not args:
        raise RunwasmError(f"exec: container {container_id}: no command given")
    rootfs = rootfs_of(spec, bundle)
    try:
        module = rootfs_paths.find_program(rootfs, args[0], cwd, env)
        host = rootfs_paths.resolve(rootfs, module) if module else ""
        kind = wasmfile.sniff_file(host) if module else wasmfile.UNKNOWN
    except OSError:
        module, host, kind = None, "", wasmfile.UNKNOWN
    if kind not in (wasmfile.MODULE, wasmfile.WAT):
        raise RunwasmError(
            f"exec: container {container_id} runs WebAssembly: {args[0]} is not a "
            "WebAssembly module in the image (only modules from the image can be executed)"
        )
    if kind == wasmfile.MODULE and "_start" not in wasmfile.function_exports(host, module or ""):
        raise RunwasmError(f"exec: module {module} exports no _start function")
    launcher, container_plan = _container_launcher(bundle)
    # Same engine, limits and launcher as the container's own guest; another module.
    plan = Plan(engine=container_plan.engine, module=engine_view.inside(rootfs, host),
                kind=kind, args=list(args),
                cwd=engine_view.inside(rootfs, rootfs_paths.resolve(rootfs, cwd)),
                readonly=container_plan.readonly, limits=container_plan.limits,
                executable=container_plan.executable, options=container_plan.options,
                sockets=container_plan.sockets, env=list(process.get("env") or []))
    process["args"] = [*launcher, plan.to_json()]
    process["cwd"] = "/"
    new_args, _fd = rewrite_args(inv, container_id, jsonfast.dumps(process).encode())
    return new_args


def _container_launcher(bundle: str) -> tuple[list[str], Plan]:
    """The launcher command line of the container's own process, and its plan."""
    path = os.path.join(bundle, "config.json")
    with open(path, "rb") as f:
        spec = load_spec(f.read(), path)
    launcher_args = (spec.get("process") or {}).get("args") or []
    try:
        return list(launcher_args[:-1]), Plan.from_json(launcher_args[-1])
    except (ValueError, KeyError, IndexError, TypeError):
        raise RunwasmError(f"exec: {path}: no runwasm plan") from None

"""Build Wasm modules, root filesystems and OCI bundles from what this repo holds.

Modules come from C (clang --target=wasm32-wasi) or WAT (wasmtime.wat2wasm); the Linux
rootfs is Debian's static busybox; config.json starts from `runc spec`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODULE_SOURCES = REPO / "examples" / "modules"
BUSYBOX = "/bin/busybox"
BUSYBOX_APPLETS = ("sh", "true", "false", "echo", "cat", "ls", "sleep", "env", "id", "touch")


def c_module(source: Path, out: Path) -> Path:
    """Compile a C file for WASI preview 1."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["clang", "--target=wasm32-wasi", "-O2", "-s", "-o", str(out),
                        str(source)], check=True)
    return out


def wat_module(text: str, out: Path) -> Path:
    import wasmtime

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(wasmtime.wat2wasm(text))
    return out


def busybox_rootfs(rootfs: Path) -> Path:
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        link = rootfs / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    return rootfs


def wasm_rootfs(rootfs: Path, modules: dict[str, Path]) -> Path:
    """A FROM-scratch image: just the modules, at the given container paths."""
    for container_path, module in modules.items():
        target = rootfs / container_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, target)
    return rootfs


def bundle(directory: Path, *, args: list[str], rootfs: str = "rootfs",
           env: list[str] | None = None, annotations: dict[str, str] | None = None,
           terminal: bool = False, readonly: bool = False, cwd: str = "/",
           mounts: list[dict[str, Any]] | None = None) -> Path:
    """Write config.json (from `runc spec`) for an existing rootfs in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.json"
    if config.exists():
        config.unlink()
    subprocess.run(["runc", "spec", "--bundle", str(directory)], check=True)
    spec = json.loads(config.read_text())
    spec["root"] = {"path": rootfs, "readonly": readonly}
    process = spec["process"]
    process.update(args=args, terminal=terminal, cwd=cwd)
    process["env"] = [*process["env"], *(env or [])]
    if annotations:
        spec["annotations"] = annotations
    spec["mounts"] = [*spec["mounts"], *(mounts or [])]
    config.write_text(json.dumps(spec, indent=2))
    return directory


def bind(source: str | os.PathLike[str], destination: str, *, readonly: bool = False) -> dict[
        str, Any]:
    options = ["rbind", "ro" if readonly else "rw"]
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": options}

"""Helpers for the tests that drive .venv/bin/runwasm on real runc (a uniquely named
module: `conftest` is a name every test directory has)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from devkit import bundles

RUNWASM = bundles.REPO / ".venv" / "bin" / "runwasm"
RUNC = shutil.which("runc") or "/usr/sbin/runc"

class Runtime:
    """runwasm (and runc) on a private --root, deleting what the test created."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids: list[str] = []

    def new_id(self) -> str:
        container_id = "t-" + uuid.uuid4().hex[:12]
        self.ids.append(container_id)
        return container_id

    def runwasm(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self._run(str(RUNWASM), args, kwargs)

    def runc(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self._run(RUNC, args, kwargs)

    def _run(self, binary: str, args: tuple[str, ...], kwargs: dict[str, Any]
             ) -> subprocess.CompletedProcess[str]:
        if "stdout" not in kwargs and "stderr" not in kwargs:
            kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run([binary, "--root", str(self.root), *args], check=False, **kwargs)

    def create(self, bundle: Path, container_id: str, *extra: str
               ) -> subprocess.CompletedProcess[str]:
        """`runwasm create`, the container's stdio to files (a pipe would stay open)."""
        out = bundle / f"{container_id}.out"
        with open(out, "w") as stdout, open(bundle / f"{container_id}.err", "w") as stderr:
            result = self.runwasm("create", "--bundle", str(bundle), *extra, container_id,
                                  stdout=stdout, stderr=stderr)
        result.stderr = (bundle / f"{container_id}.err").read_text()
        return result

    def state(self, container_id: str) -> dict[str, Any] | None:
        import json

        result = self.runc("state", container_id)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def listed(self) -> list[str]:
        import json

        result = self.runc("list", "--format", "json")
        return [c["id"] for c in json.loads(result.stdout or "null") or []]

    def cleanup(self) -> None:
        for container_id in self.ids:
            self.runc("delete", "--force", container_id)


def engine_missing(name: str) -> str:
    """Why runwasm does not find engine `name` with no node configuration, or ""."""
    from runwasm.engines import registry
    from runwasm.engines.base import EngineError

    try:
        registry.load(name).locate(registry.settings_for({}, name))
    except EngineError as e:
        return f"{e} (setup installs WasmEdge from ../shared/wasmedge)"
    return ""


WASMEDGE_KITS = sorted((bundles.REPO.parent / "shared" / "wasmedge").glob(
    "wasmedge-*-linux-amd64.tar.gz"))


def install_wasmedge(prefix: Path) -> Path:
    """../shared/wasmedge unpacked as WasmEdge's installer lays it out, PREFIX/{bin,lib};
    its binary."""
    import tarfile

    with tarfile.open(WASMEDGE_KITS[-1]) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) == 2:
                member.name = parts[1]
                tar.extract(member, prefix)
    return prefix / "bin" / "wasmedge"


def wasm_bundle(directory: Path, files: dict[str, Path], args: list[str],
                annotations: dict[str, str] | None = None, **kwargs: Any) -> Path:
    bundles.wasm_rootfs(directory / "rootfs", files)
    return bundles.bundle(directory, args=args, annotations=annotations
                          if annotations is not None
                          else {"module.wasm.image/variant": "compat"}, **kwargs)


def busybox_bundle(directory: Path, args: list[str], **kwargs: Any) -> Path:
    bundles.busybox_rootfs(directory / "rootfs")
    return bundles.bundle(directory, args=args, **kwargs)


def snapshot(directory: Path) -> dict[str, str]:
    """Every path under `directory` with a digest of its content or link target."""
    result: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        rel = str(path.relative_to(directory))
        if path.is_symlink():
            result[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            result[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            result[rel] = "dir"
    return result


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]

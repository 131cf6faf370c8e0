"""The packaged private tree serves any Python from 3.9 on: run it under several.

The .deb's /usr/lib/runwasm is unpacked and driven by each interpreter the way
/usr/bin/runwasm drives it (`-I -S`, the private directory first on sys.path): an
admin verb (typer, click, rich), and a Wasm bundle on the host's real runc, whose
launcher then runs inside the container on that same interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from pkgtest import REPO

PYTHONS = {
    "3.9": "/root/.pyenv/versions/3.9.18/bin/python3.9",
    "3.11-system": "/usr/bin/python3",
    "3.12": "/root/.pyenv/versions/3.12.1/bin/python3.12",
    "3.13": "/root/.pyenv/versions/3.13.0/bin/python3.13",
}
RUNC_ROOT = "/run/runwasm-pkgtests"


def available() -> list[str]:
    return [name for name, path in PYTHONS.items() if os.access(path, os.X_OK)]


@pytest.fixture(scope="module")
def tree(unpacked: Path) -> Path:
    return unpacked / "usr/lib/runwasm"


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sys

    sys.path.insert(0, str(REPO))
    from devkit import bundles

    out = tmp_path_factory.mktemp("module")
    return bundles.c_module(bundles.MODULE_SOURCES / "hello.c", out / "hello.wasm")


def runwasm(python: str, tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """What /usr/bin/runwasm does, with another interpreter and the unpacked tree."""
    code = ("import sys; sys.path[:0] = [sys.argv.pop(1)]; sys.argv[0] = 'runwasm'; "
            "from runwasm.handler.main import main; main()")
    return subprocess.run([python, "-I", "-S", "-B", "-c", code, str(tree), *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)


def test_at_least_two_python_versions_are_here() -> None:
    minors = {name.split("-")[0] for name in available()}
    if len(minors) < 2:
        pytest.skip(f"only {sorted(minors)} of {sorted(PYTHONS)} installed here")


@pytest.mark.parametrize("name", list(PYTHONS))
def test_admin_verb_runs(name: str, tree: Path) -> None:
    python = PYTHONS[name]
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not installed")
    result = runwasm(python, tree, "engines", "--json")
    assert result.returncode == 0, result.stderr
    engines = {row["name"]: row for row in json.loads(result.stdout)}
    assert engines["wasmtime"]["installed"] is True
    assert engines["wasmtime"]["version"]


@pytest.mark.parametrize("name", list(PYTHONS))
def test_wasm_bundle_runs_on_runc(name: str, tree: Path, hello: Path, tmp_path: Path) -> None:
    python = PYTHONS[name]
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not installed")
    if shutil.which("runc") is None:
        pytest.fail("runc is missing: run scripts/setup.sh")
    import sys

    sys.path.insert(0, str(REPO))
    from devkit import bundles

    bundle = tmp_path / "bundle"
    bundles.wasm_rootfs(bundle / "rootfs", {"/hello.wasm": hello})
    bundles.bundle(bundle, args=["/hello.wasm", "7", name], env=["GREETING=packaged"],
                   annotations={"module.wasm.image/variant": "compat"})
    container_id = "pkg-" + uuid.uuid4().hex[:10]
    try:
        result = runwasm(python, tree, "--root", RUNC_ROOT, "run", "--bundle", str(bundle),
                         container_id)
    finally:
        subprocess.run(["runc", "--root", RUNC_ROOT, "delete", "--force", container_id],
                       capture_output=True, check=False)
    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines() == [
        "Hello from WebAssembly!", "argv[0]=/hello.wasm", "argv[1]=7", f"argv[2]={name}",
        "GREETING=packaged"]
    # The launcher ran on this interpreter, from the unpacked tree (as the rewritten
    # config.json, left in the bundle after `run`, shows).
    args = json.loads((bundle / "config.json").read_text())["process"]["args"]
    if args[0] != "/hello.wasm":
        assert os.path.realpath(args[0]) == os.path.realpath(python)
        assert str(tree) in " ".join(args)

"""WebAssembly's WASI test suite (../shared/wasi-testsuite) as OCI containers through runwasm.

Each test becomes a bundle as a user would build it: an image holding the module, the
spec's `args` after it, exactly its `env` as process.env, its `root` directory as the
image root (the guest's `/`), and each of its `dirs` as a volume at `/NAME`, so the guest
sees it under its own name from its cwd `/`. Every run gets fresh, writable copies (tests
create and remove files), as a git checkout of the suite would be. The result is checked
as upstream's runner checks it: the exit code, and stdout/stderr by prefix.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine_matrix import Engine

from devkit import bundles

KIT = bundles.REPO.parent / "shared" / "wasi-testsuite" / "tests"
SUITES = ("assemblyscript", "c", "rust")
TARGET = "wasm32-wasip1"
# A guest that hangs (an engine bug) ends as runwasm ends any guest past its timeout.
GUEST_TIMEOUT = "30s"
WORKERS = 4  # containers at once: most of a run is waiting on runc and the kernel


class Expected:
    """Why a test is expected to fail, and `sign`, what its failure must show (so it
    cannot fail for another reason unnoticed); `timeout` ends one that would hang."""

    def __init__(self, reason: str, sign: str, timeout: str = "") -> None:
        self.reason = reason
        self.sign = sign
        self.timeout = timeout


# Expected on every engine: what no runtime that preopens a directory can pass.
EVERY_ENGINE = {
    "c/sock_shutdown-invalid_fd": Expected(
        "expects fd 3 to be closed, but fd 3 is the preopened image root (any runtime that "
        "preopens a directory fails it)", "Assertion failed: errno == EBADF"),
}
# The wasmer Python package (1.1.0, Wasmer 2.1.1) itself, checked against its behaviour
# outside any container too.
_WASMER_2_1_NAMES = (
    "Wasmer 2.1.1 (the wasmer 1.1.0 Python package) reports each preopen's name one byte "
    "too long, a trailing NUL included (\"/\" reads as \"/\\0\"), so the test finds no "
    "preopen named \"/\"")
_NO_SOCK_SHUTDOWN = Expected(
    "Wasmer 2.1.1 does not implement sock_shutdown (it panics: \"not implemented: "
    "wasi::sock_shutdown\")", "not implemented: wasi::sock_shutdown")
WASMER_PYTHON = {
    "c/fdopendir-with-access": Expected(
        "Wasmer 2.1.1 gives the two files of a directory the same inode number (d_ino and "
        "st_ino)", "inodes[0] != inodes[1]"),
    "c/pwrite-with-append": Expected(
        "Wasmer 2.1.1 does not honour O_APPEND for the file offset: after lseek(0) a write "
        "leaves it at 2, not at the end (4)", "lseek(fd, 0, SEEK_CUR) == 4"),
    "c/sock_shutdown-not_sock": _NO_SOCK_SHUTDOWN,
    # Fails earlier here than on any other engine (and would fail anyway, see EVERY_ENGINE).
    "c/sock_shutdown-invalid_fd": _NO_SOCK_SHUTDOWN,
    "rust/poll_oneoff_stdio": Expected(
        "Wasmer 2.1.1 does not implement poll_oneoff on clocks (it panics: \"Polling not "
        "implemented for clocks yet\")", "Polling not implemented for clocks yet"),
    "rust/path_open_preopen": Expected(
        _WASMER_2_1_NAMES + ": its search runs on through every fd up to 2^31",
        "runwasm.io/timeout=3s", timeout="3s"),
}
BY_ENGINE = {"wasmer-python": WASMER_PYTHON}


def expected_failure(label: str, case: Case) -> Expected | None:
    """Why `case` fails on the engine run as `label`, or None when it must pass."""
    found = BY_ENGINE.get(label, {}).get(case.name) or EVERY_ENGINE.get(case.name)
    if found is None and label == "wasmer-python" and case.name.startswith("rust/") \
            and case.spec.get("root"):
        # Every Rust test given a root directory looks for it as the preopen named "/".
        found = Expected(_WASMER_2_1_NAMES + " (\"failed to find scratch dir\")",
                         "failed to find scratch dir")
    return found


class Case:
    """One test: its module and its JSON spec (empty when it has none)."""

    def __init__(self, module: Path) -> None:
        self.module = module
        self.name = f"{module.parent.parent.name}/{module.stem}"  # e.g. c/lseek
        spec_path = module.with_suffix(".json")
        self.spec: dict[str, Any] = json.loads(spec_path.read_text()) \
            if spec_path.exists() else {}

    def __repr__(self) -> str:
        return self.name


def load_cases() -> list[Case]:
    """Every test of the kit, in a stable order; [] when the kit is absent."""
    cases = []
    for suite in SUITES:
        directory = KIT / suite / TARGET
        cases += [Case(m) for m in sorted(directory.glob("*.wasm"))]
    return cases


def _fresh_copy(source: Path, target: Path) -> None:
    """The tree with the modes a checkout has (the kit's files are read-only)."""
    shutil.copytree(source, target, copy_function=shutil.copyfile, dirs_exist_ok=True)
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def bundle_for(case: Case, engine: Engine, directory: Path) -> Path:
    spec = case.spec
    base = case.module.parent
    module_path = f"/{case.module.name}"
    if spec.get("root"):
        _fresh_copy(base / spec["root"], directory / "rootfs")
    mounts = []
    for name in spec.get("dirs", []):
        volume = directory / "volumes" / name
        _fresh_copy(base / name, volume)
        mounts.append(bundles.bind(volume, f"/{name}"))
    env = [f"{key}={value}" for key, value in spec.get("env", {}).items()]
    expected = expected_failure(engine.label, case)
    timeout = expected.timeout if expected and expected.timeout else GUEST_TIMEOUT
    return engine.bundle({module_path: case.module}, [module_path, *spec.get("args", [])],
                         {"runwasm.io/timeout": timeout}, env=env,
                         directory=directory, mounts=mounts)


def failures(case: Case, result: subprocess.CompletedProcess[str]) -> list[str]:
    """What differs from the spec (upstream compares stdout/stderr by prefix)."""
    spec = case.spec
    found = []
    want = spec.get("exit_code", 0)
    if result.returncode != want:
        found.append(f"exit code {result.returncode}, expected {want}")
    for stream in ("stdout", "stderr"):
        expected = spec.get(stream)
        got = getattr(result, stream)
        if expected is not None and not got.startswith(expected):
            found.append(f"{stream} {got[:200]!r} does not start with {expected!r}")
    if found:
        found.append(f"stdout: {result.stdout[-800:]!r}")
        found.append(f"stderr: {result.stderr[-800:]!r}")
    return found


def run_cases(engine: Engine, cases: list[Case], workdir: Path) -> dict[str, list[str]]:
    """Run each case in its own container, WORKERS at a time: {name: failures}."""
    prepared = [(case, bundle_for(case, engine, workdir / case.name.replace("/", "-")))
                for case in cases]

    def run(item: tuple[Case, Path]) -> tuple[str, list[str]]:
        case, bundle = item
        try:
            result = engine.run(bundle, timeout=120)
        except subprocess.TimeoutExpired:
            return case.name, ["runwasm run did not end within 120 s"]
        return case.name, failures(case, result)

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(run, prepared))

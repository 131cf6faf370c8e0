"""The .deb installed into a clean Debian 12 root, and runwasm run from it on runc."""

from __future__ import annotations

import json
import shutil
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import debroot
import pytest
from pkgtest import REPO, Packages

RUNC_ROOT = "/run/runwasm-pkgtests"  # inside the Debian root


@pytest.fixture(scope="module")
def root(packages: Packages, root_tarball: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = debroot.unpack(root_tarball, tmp_path_factory.mktemp("deb") / "root")
    result = debroot.install_deb(directory, packages.deb)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "could not precompile" not in result.stderr
    try:
        yield directory
    finally:
        for line in debroot.in_root(directory, "runc", "--root", RUNC_ROOT, "list",
                                    "-q").stdout.split():
            debroot.in_root(directory, "runc", "--root", RUNC_ROOT, "delete", "--force", line)
        debroot.remove_root(directory)


def test_files_land_where_they_belong(root: Path, packages: Packages) -> None:
    runwasm = root / "usr/bin/runwasm"
    assert runwasm.stat().st_mode & 0o777 == 0o755
    assert runwasm.read_text().startswith("#!/usr/bin/python3 -IS\n")
    assert (root / "usr/lib/runwasm/runwasm/handler/main.py").is_file()
    assert (root / "etc/runwasm/config.toml").read_bytes() == (
        REPO / "configs/config.toml").read_bytes()
    for conf in (REPO / "configs/crio").glob("*.conf"):
        assert (root / "etc/crio/crio.conf.d" / conf.name).read_bytes() == conf.read_bytes()
    assert (root / "usr/share/runwasm/kubernetes").is_dir()
    status = debroot.in_root(root, "dpkg-query", "-W", "-f", "${Status} ${Version}", "runwasm")
    assert status.stdout == f"install ok installed {packages.version}"


def test_state_and_cache_directories_are_root_only(root: Path) -> None:
    for path in (root / "var/lib/runwasm", root / "var/lib/runwasm/cache"):
        st = path.stat()
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, path
        assert (st.st_uid, st.st_gid) == (0, 0), path


def test_bytecode_is_compiled_for_the_system_python_only(root: Path) -> None:
    version = debroot.in_root(root, "python3", "-c",
                              "import sys; print(sys.implementation.cache_tag)").stdout.strip()
    tags = {p.name.split(".")[1] for p in (root / "usr/lib/runwasm").rglob("*.pyc")}
    assert tags == {version}
    assert (root / f"usr/lib/runwasm/runwasm/handler/__pycache__/main.{version}.pyc").exists()


def test_nothing_in_the_system_site_packages(root: Path) -> None:
    result = debroot.in_root(root, "python3", "-c", "import runwasm")
    assert result.returncode != 0 and "No module named 'runwasm'" in result.stderr
    for site in (root / "usr/lib/python3/dist-packages", root / "usr/local/lib"):
        assert not list(site.rglob("runwasm*")), site


def test_version(root: Path, packages: Packages) -> None:
    result = debroot.in_root(root, "runwasm", "--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"runwasm version {packages.version}"
    assert lines[1].startswith("runc version ")


def test_doctor(root: Path) -> None:
    verbs = (root / "usr/lib/runwasm/runwasm/cli/__init__.py").read_text()
    if '"doctor"' not in verbs:
        pytest.skip("this runwasm has no doctor verb yet")
    result = debroot.in_root(root, "runwasm", "doctor", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    statuses = {check["check"]: check["status"] for check in report["checks"]}
    assert report["ok"] is True and "fail" not in statuses.values(), report
    # What the package itself provides is all in order.
    for name in ("python", "node config", "delegate runtime", "engines", "cache directory",
                 "CRI-O handler"):
        assert statuses.get(name) == "ok", (name, report)


def test_admin_verbs_run_on_the_system_python(root: Path) -> None:
    result = debroot.in_root(root, "runwasm", "engines", "--json")
    assert result.returncode == 0, result.stderr
    engines = {row["name"]: row for row in json.loads(result.stdout)}
    assert engines["wasmtime"]["installed"] is True
    help_text = debroot.in_root(root, "runwasm", "engines", "--help")
    assert help_text.returncode == 0 and "Usage: runwasm engines" in help_text.stdout


def test_features(root: Path) -> None:
    result = debroot.in_root(root, "runwasm", "features")
    assert result.returncode == 0, result.stderr
    features = json.loads(result.stdout)
    assert "ociVersionMax" in features
    assert "module.wasm.image/variant" in features["annotations"]


def wasm_bundle(root: Path, name: str, args: list[str]) -> str:
    """A FROM-scratch Wasm bundle under the root's /srv; its path inside the root."""
    sys.path.insert(0, str(REPO))
    from devkit import bundles

    module = bundles.c_module(bundles.MODULE_SOURCES / "hello.c",
                              root.parent / "modules" / "hello.wasm")
    directory = root / "srv" / name
    bundles.wasm_rootfs(directory / "rootfs", {"/hello.wasm": module})
    bundles.bundle(directory, args=args, env=["GREETING=from the package"],
                   annotations={"module.wasm.image/variant": "compat"})
    return f"/srv/{name}"


def test_wasm_bundle_runs_through_the_installed_runwasm_on_runc(root: Path) -> None:
    bundle = wasm_bundle(root, "hello", ["/hello.wasm", "7", "packaged"])
    container_id = "pkg-" + uuid.uuid4().hex[:10]
    result = debroot.in_root(root, "/usr/bin/runwasm", "--root", RUNC_ROOT, "run",
                             "--bundle", bundle, container_id)
    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines() == [
        "Hello from WebAssembly!", "argv[0]=/hello.wasm", "argv[1]=7", "argv[2]=packaged",
        "GREETING=from the package"]
    assert result.stderr == ""
    spec = json.loads((root / "srv/hello/config.json").read_text())
    assert spec["process"]["args"][0].startswith("/usr/bin/python3")
    assert "/usr/lib/runwasm" in " ".join(spec["process"]["args"])
    debroot.in_root(root, "runc", "--root", RUNC_ROOT, "delete", "--force", container_id)


def test_linux_bundle_passes_through_to_runc(root: Path) -> None:
    sys.path.insert(0, str(REPO))
    from devkit import bundles

    if not Path(bundles.BUSYBOX).exists():
        pytest.fail(f"{bundles.BUSYBOX} is missing: run scripts/setup.sh (busybox-static)")
    directory = root / "srv" / "linux"
    bundles.busybox_rootfs(directory / "rootfs")
    bundles.bundle(directory, args=["sh", "-c", "echo linux via runc; exit 3"])
    before = (directory / "config.json").read_bytes()
    container_id = "pkg-" + uuid.uuid4().hex[:10]
    result = debroot.in_root(root, "runwasm", "--root", RUNC_ROOT, "run", "--bundle",
                             "/srv/linux", container_id)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "linux via runc\n"
    assert (directory / "config.json").read_bytes() == before
    assert not (directory / ".runwasm").exists()
    debroot.in_root(root, "runc", "--root", RUNC_ROOT, "delete", "--force", container_id)
    shutil.rmtree(directory)

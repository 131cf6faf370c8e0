"""`runwasm install crio|containerd`: writes what is shipped, idempotently, keeping
foreign content and comments; errors are one line. Always on temp paths, never /etc."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from runwasm.cli import install as inst

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
PATH = "/usr/bin/runwasm"

CRIO_EXISTING = """\
# Operator's own drop-in: keep me.
[crio.runtime]
conmon_cgroup = "pod"  # inline comment survives

[crio.runtime.runtimes.crun]
runtime_path = "/usr/bin/crun"

# runwasm, tuned by hand
[crio.runtime.runtimes.runwasm]
runtime_path = "/opt/old/runwasm"
# a custom root, kept
runtime_root = "/run/custom-runwasm"
container_min_memory = "24MiB"
allowed_annotations = [
    "run.oci.handler",  # refused by CRI-O
    "io.kubernetes.cri-o.Devices",
    "runwasm.io/engine",
]

[crio.runtime.runtimes.runwasm.default_annotations]
"runwasm.io/engine" = "wasmtime"

[crio.image]
pause_image = "registry.k8s.io/pause:3.9"
"""

CRIO_MAIN = """\
[crio]
root = "/var/lib/containers/storage"

[crio.runtime]
default_runtime = "runc"

# The operator's runc, customised
[crio.runtime.runtimes.runc]
runtime_path = "/usr/local/bin/runc"
runtime_root = "/run/runc"
monitor_cgroup = "system.slice"

[crio.network]
network_dir = "/etc/cni/net.d/"
"""

# Debian's /etc/containerd/config.toml, plus a runc runtime with systemd cgroups.
CONTAINERD_EXISTING = """\
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    # keep this comment
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"""

MAIN = "import sys; sys.argv[0] = sys.argv.pop(1); from runwasm.handler.main import main; main()"


def runwasm(*args: str, argv0: str = PATH) -> subprocess.CompletedProcess[str]:
    """runwasm's real entry point in a child process, on this test's interpreter."""
    env = {**os.environ, "RUNWASM_CONFIG": "/nonexistent/runwasm-test-config.toml",
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", MAIN, argv0, *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


def parsed(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomlkit.parse(path.read_text()).unwrap()
    return data


def snapshot(path: Path) -> tuple[bytes, int, float]:
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mtime


# ---------------------------------------------------------------------------------------
# CRI-O, dedicated handler


def test_crio_fresh_is_the_shipped_dropin(tmp_path: Path) -> None:
    crio_dir = tmp_path / "crio.conf.d"
    result = runwasm("install", "crio", "--crio-dir", str(crio_dir), "--runtime-path", PATH)
    assert result.returncode == 0, result.stderr
    written = crio_dir / "10-runwasm.conf"
    assert written.read_text() == (CONFIGS / "crio" / "10-runwasm.conf").read_text()
    assert oct(written.stat().st_mode & 0o777) == oct(0o644)
    assert f"{written}: changed:" in result.stdout
    assert "Restart CRI-O to apply: systemctl restart crio" in result.stdout
    assert result.stderr == ""


def test_crio_second_run_changes_nothing(tmp_path: Path) -> None:
    args = ("install", "crio", "--crio-dir", str(tmp_path), "--runtime-path", PATH)
    assert runwasm(*args).returncode == 0
    before = snapshot(tmp_path / "10-runwasm.conf")
    result = runwasm(*args)
    assert result.returncode == 0, result.stderr
    assert "already up to date, nothing changed" in result.stdout
    assert "Restart" not in result.stdout
    assert snapshot(tmp_path / "10-runwasm.conf") == before


def test_crio_default_runtime_path_is_this_runwasm(tmp_path: Path) -> None:
    result = runwasm("install", "crio", "--crio-dir", str(tmp_path),
                     argv0="/opt/runwasm/bin/runwasm")
    assert result.returncode == 0, result.stderr
    table = parsed(tmp_path / "10-runwasm.conf")["crio"]["runtime"]["runtimes"]["runwasm"]
    assert table["runtime_path"] == "/opt/runwasm/bin/runwasm"


def test_crio_updates_keeping_foreign_content(tmp_path: Path) -> None:
    target = tmp_path / "10-runwasm.conf"
    target.write_text(CRIO_EXISTING)
    target.chmod(0o600)
    args = ("install", "crio", "--crio-dir", str(tmp_path), "--runtime-path", PATH)
    result = runwasm(*args)
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    for kept in ("# Operator's own drop-in: keep me.", "# inline comment survives",
                 "# runwasm, tuned by hand", "# a custom root, kept"):
        assert kept in text
    data = parsed(target)
    assert data["crio"]["runtime"]["conmon_cgroup"] == "pod"
    assert data["crio"]["runtime"]["runtimes"]["crun"] == {"runtime_path": "/usr/bin/crun"}
    assert data["crio"]["image"] == {"pause_image": "registry.k8s.io/pause:3.9"}
    table = data["crio"]["runtime"]["runtimes"]["runwasm"]
    assert table["runtime_path"] == PATH
    assert table["runtime_type"] == "oci"
    assert table["runtime_root"] == "/run/custom-runwasm"  # the operator's choice stays
    assert table["container_min_memory"] == "24MiB"
    assert table["default_annotations"] == {"runwasm.io/engine": "wasmtime"}
    # entries CRI-O refuses (it would drop the handler) go; valid foreign ones stay
    assert table["allowed_annotations"] == ["io.kubernetes.cri-o.Devices",
                                            "module.wasm.image/variant", "run.oci."]
    assert table["monitor_env"] == [inst.DEFAULT_PATH_ENV]
    assert "removed 'run.oci.handler'" in result.stdout
    assert "removed 'runwasm.io/engine'" in result.stdout
    assert 'runtime_path = "/usr/bin/runwasm" (was "/opt/old/runwasm")' in result.stdout
    assert target.stat().st_mode & 0o777 == 0o600  # mode kept
    before = snapshot(target)
    assert "nothing changed" in runwasm(*args).stdout
    assert snapshot(target) == before


def test_crio_dry_run_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "10-runwasm.conf"
    target.write_text(CRIO_EXISTING)
    before = snapshot(target)
    result = runwasm("install", "crio", "--crio-dir", str(tmp_path), "--runtime-path", PATH,
                     "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would change" in result.stdout and "Dry run: nothing written." in result.stdout
    assert snapshot(target) == before
    fresh = tmp_path / "fresh"
    runwasm("install", "crio", "--crio-dir", str(fresh), "--dry-run")
    assert not fresh.exists()


def test_crio_custom_handler_name(tmp_path: Path) -> None:
    result = runwasm("install", "crio", "--crio-dir", str(tmp_path), "--handler", "wasm",
                     "--file", "20-wasm.conf", "--runtime-path", PATH)
    assert result.returncode == 0, result.stderr
    table = parsed(tmp_path / "20-wasm.conf")["crio"]["runtime"]["runtimes"]["wasm"]
    assert table["runtime_root"] == "/run/wasm"
    assert table["runtime_path"] == PATH


def test_crio_invalid_toml_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "10-runwasm.conf"
    target.write_text("[crio.runtime\nbroken = \n")
    before = snapshot(target)
    result = runwasm("install", "crio", "--crio-dir", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"runwasm: {target}: invalid TOML"), lines
    assert snapshot(target) == before


def test_crio_handler_not_a_table_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "10-runwasm.conf"
    target.write_text('[crio.runtime]\nruntimes = "oops"\n')
    result = runwasm("install", "crio", "--crio-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["runwasm: crio.runtime.runtimes is not a table"]


def test_crio_unwritable_target_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runwasm("install", "crio", "--crio-dir", str(blocker / "sub"))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("runwasm: "), lines
    assert lines[0].endswith("10-runwasm.conf: Not a directory"), lines


# ---------------------------------------------------------------------------------------
# CRI-O, platform_runtime_paths


def test_crio_platform_fresh_is_the_shipped_example(tmp_path: Path) -> None:
    result = runwasm("install", "crio", "--platform", "--crio-dir", str(tmp_path),
                     "--runtime-path", PATH)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "10-runwasm-platform.conf"
    shipped = CONFIGS / "crio" / "10-runwasm-platform.conf.example"
    assert written.read_text() == shipped.read_text()
    again = runwasm("install", "crio", "--platform", "--crio-dir", str(tmp_path),
                    "--runtime-path", PATH)
    assert "nothing changed" in again.stdout


def test_crio_platform_into_the_operators_runc_table(tmp_path: Path) -> None:
    main = tmp_path / "crio.conf"
    main.write_text(CRIO_MAIN)
    args = ("install", "crio", "--platform", "--file", str(main), "--runtime-path", PATH)
    result = runwasm(*args)
    assert result.returncode == 0, result.stderr
    assert "# The operator's runc, customised" in main.read_text()
    data = parsed(main)
    runc = data["crio"]["runtime"]["runtimes"]["runc"]
    assert runc == {"runtime_path": "/usr/local/bin/runc", "runtime_root": "/run/runc",
                    "monitor_cgroup": "system.slice",
                    "platform_runtime_paths": {"wasi/wasm32": PATH, "wasi/wasm": PATH}}
    assert data["crio"]["network"] == {"network_dir": "/etc/cni/net.d/"}
    assert data["crio"]["root"] == "/var/lib/containers/storage"
    assert not (tmp_path / "10-runwasm-platform.conf").exists()
    before = snapshot(main)
    assert "nothing changed" in runwasm(*args).stdout
    assert snapshot(main) == before


def test_crio_platform_other_default_handler_reminds_the_delegate(tmp_path: Path) -> None:
    result = runwasm("install", "crio", "--platform", "--handler", "crun", "--crio-dir",
                     str(tmp_path), "--runtime-path", PATH)
    assert result.returncode == 0, result.stderr
    crun = parsed(tmp_path / "10-runwasm-platform.conf")["crio"]["runtime"]["runtimes"]["crun"]
    assert crun["runtime_root"] == "/run/crun"
    assert "runtime.delegate" in result.stdout


# ---------------------------------------------------------------------------------------
# containerd


def test_containerd_fresh_is_the_shipped_snippet(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    result = runwasm("install", "containerd", "--containerd-config", str(config),
                     "--runtime-path", PATH)
    assert result.returncode == 0, result.stderr
    assert config.read_text() == (CONFIGS / "containerd" / "runwasm.toml").read_text()
    assert "Restart containerd to apply: systemctl restart containerd" in result.stdout


def test_containerd_merges_keeping_foreign_content(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONTAINERD_EXISTING)
    args = ("install", "containerd", "--containerd-config", str(config), "--runtime-path",
            PATH)
    result = runwasm(*args)
    assert result.returncode == 0, result.stderr
    assert "# keep this comment" in config.read_text()
    data = parsed(config)
    cri = data["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": "/etc/cni/net.d"}
    assert cri["containerd"]["default_runtime_name"] == "runc"
    assert cri["containerd"]["runtimes"]["runc"] == {
        "runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": True}}
    assert cri["containerd"]["runtimes"]["runwasm"] == {
        "runtime_type": "io.containerd.runc.v2",
        "pod_annotations": list(inst.CONTAINERD_POD_ANNOTATIONS),
        # SystemdCgroup follows the runc runtime's
        "options": {"BinaryName": PATH, "SystemdCgroup": True}}
    assert data["plugins"]["io.containerd.internal.v1.opt"] == {
        "path": "/var/lib/containerd/opt"}
    before = snapshot(config)
    assert "nothing changed" in runwasm(*args).stdout
    assert snapshot(config) == before


def test_containerd_keeps_extra_pod_annotations(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runwasm]\n'
        'runtime_type = "io.containerd.runc.v2"\npod_annotations = ["example.com/*"]\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runwasm.options]\n'
        'BinaryName = "/old/runwasm"\nRoot = "/run/containerd/runwasm"\n')
    result = runwasm("install", "containerd", "--containerd-config", str(config),
                     "--runtime-path", PATH)
    assert result.returncode == 0, result.stderr
    runtime = parsed(config)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"][
        "runtimes"]["runwasm"]
    assert runtime["pod_annotations"] == ["example.com/*", *inst.CONTAINERD_POD_ANNOTATIONS]
    assert runtime["options"] == {"BinaryName": PATH, "Root": "/run/containerd/runwasm"}


def test_containerd_version_3(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("version = 3\n\n[plugins.'io.containerd.cri.v1.images']\n"
                      "snapshotter = 'overlayfs'\n")
    result = runwasm("install", "containerd", "--containerd-config", str(config),
                     "--runtime-path", PATH)
    assert result.returncode == 0, result.stderr
    data = parsed(config)
    assert data["plugins"]["io.containerd.cri.v1.images"] == {"snapshotter": "overlayfs"}
    runtime = data["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"][
        "runwasm"]
    assert runtime["options"]["BinaryName"] == PATH


@pytest.mark.parametrize("text", ["[plugins.cri]\nsystemd_cgroup = true\n", "version = 1\n"])
def test_containerd_version_1_is_refused_in_one_line(tmp_path: Path, text: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = runwasm("install", "containerd", "--containerd-config", str(config))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "migrate it first" in lines[0], lines
    assert config.read_text() == text


@pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd is not installed")
def test_containerd_default_config_round_trips(tmp_path: Path) -> None:
    """containerd's own full default config, edited, still loads in containerd."""
    default = subprocess.run(["containerd", "config", "default"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    config = tmp_path / "config.toml"
    config.write_text(default)
    result = runwasm("install", "containerd", "--containerd-config", str(config),
                     "--runtime-path", PATH)
    assert result.returncode == 0, result.stderr
    assert config.read_text().startswith(default.split("[plugins")[0])
    dump = subprocess.run(["containerd", "--config", str(config), "config", "dump"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert dump.returncode == 0, dump.stderr
    runtimes = tomlkit.parse(dump.stdout).unwrap()["plugins"]["io.containerd.grpc.v1.cri"][
        "containerd"]["runtimes"]
    assert runtimes["runwasm"]["options"]["BinaryName"] == PATH
    assert runtimes["runc"]["runtime_type"] == "io.containerd.runc.v2"


# ---------------------------------------------------------------------------------------
# the edit functions on their own


def test_ensure_crio_handler_reports_nothing_when_done() -> None:
    doc = tomlkit.parse((CONFIGS / "crio" / "10-runwasm.conf").read_text())
    assert inst.ensure_crio_handler(doc, "runwasm", PATH) == []


def test_help_lists_both_targets() -> None:
    result = runwasm("install", "--help")
    assert result.returncode == 0
    assert "crio" in result.stdout and "containerd" in result.stdout

"""`runwasm doctor`: each check is ok on a good node and fails (or warns) when it should.
Everything points at temp paths; nothing under /etc is read or written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MAIN = "import sys; sys.argv[0] = sys.argv.pop(1); from runwasm.handler.main import main; main()"
ROOT = os.geteuid() == 0


class Node:
    """A fake node under tmp_path: runwasm's path, node config, CRI-O dirs, cache dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runwasm = root / "usr" / "bin" / "runwasm"
        self.runwasm.parent.mkdir(parents=True)
        self.runwasm.write_text("#!/bin/sh\nexit 0\n")
        self.runwasm.chmod(0o755)
        self.config = root / "etc" / "runwasm" / "config.toml"
        self.config.parent.mkdir(parents=True)
        self.config.write_text('[wasm]\ndefault_engine = "wasmtime"\n')
        self.crio_dir = root / "etc" / "crio" / "crio.conf.d"
        self.crio_config = root / "etc" / "crio" / "crio.conf"
        self.cache = root / "var" / "lib" / "runwasm"
        self.cache.mkdir(parents=True, mode=0o700)
        self.cache.chmod(0o700)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "RUNWASM_CONFIG": str(self.root / "no-such-config.toml"),
               "PYTHONPATH": str(REPO)}
        return subprocess.run([sys.executable, "-c", MAIN, str(self.runwasm), *args],
                              capture_output=True, text=True, timeout=60, env=env,
                              check=False)

    def install_crio(self, *extra: str) -> None:
        result = self.run("install", "crio", "--crio-dir", str(self.crio_dir), *extra)
        assert result.returncode == 0, result.stderr

    def doctor(self, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
        result = self.run("doctor", "--json", "--config", str(self.config), "--crio-dir",
                          str(self.crio_dir), "--crio-config", str(self.crio_config),
                          "--cache-dir", str(self.cache), *extra)
        assert result.stderr == "", result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        assert data["ok"] == (result.returncode == 0)
        checks: dict[str, dict[str, str]] = {}
        for check in data["checks"]:
            assert check["status"] in ("ok", "warn", "fail")
            assert check["status"] == "ok" or check["fix"], check  # never a problem w/o fix
            checks.setdefault(check["check"], check)
        return result.returncode, checks


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


@pytest.fixture
def good(node: Node) -> Node:
    node.install_crio()
    return node


@pytest.mark.skipif(not ROOT, reason="the cache directory must be root's: run as root")
def test_good_node_is_all_ok(good: Node) -> None:
    code, checks = good.doctor()
    assert code == 0
    statuses = {name: c["status"] for name, c in checks.items()}
    assert statuses == {"python": "ok", "node config": "ok", "delegate runtime": "ok",
                        "engines": "ok", "cache directory": "ok", "CRI-O handler": "ok"}
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in checks["python"][
        "detail"]
    assert "runc" in checks["delegate runtime"]["detail"]
    assert "default wasmtime" in checks["engines"]["detail"]
    assert str(good.runwasm) in checks["CRI-O handler"]["detail"]


def test_human_output(good: Node) -> None:
    (good.crio_dir / "10-runwasm.conf").unlink()
    good.crio_dir.rmdir()
    result = good.run("doctor", "--config", str(good.config), "--crio-dir",
                      str(good.crio_dir), "--crio-config", str(good.crio_config),
                      "--cache-dir", str(good.root / "missing-cache"))
    assert result.returncode == 0, result.stderr  # warnings only
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    python ")
    assert any(line.startswith("warn  cache directory ") for line in lines)
    assert any("fix: install -d -m 0700 -o root -g root" in line for line in lines)
    assert lines[-1].endswith("0 fail")


# ---------------------------------------------------------------------------------------
# node config, delegate, engines


def test_node_config_missing_is_a_warning(good: Node) -> None:
    good.config.unlink()
    code, checks = good.doctor()
    assert checks["node config"]["status"] == "warn"
    assert "defaults are in use" in checks["node config"]["detail"]
    assert checks["engines"]["status"] == "ok"


def test_node_config_invalid_fails_naming_the_key(good: Node) -> None:
    good.config.write_text('[wasm]\ndetection = "sometimes"\n')
    code, checks = good.doctor()
    assert code == 1
    assert checks["node config"]["status"] == "fail"
    assert "wasm.detection" in checks["node config"]["detail"]


def test_delegate_missing_fails(good: Node) -> None:
    good.config.write_text('[runtime]\ndelegate = "/nonexistent/runc"\n')
    code, checks = good.doctor()
    assert code == 1
    assert checks["delegate runtime"]["status"] == "fail"
    assert "/nonexistent/runc" in checks["delegate runtime"]["detail"]
    assert "apt-get install runc" in checks["delegate runtime"]["fix"]


def test_default_engine_not_installed_fails(good: Node) -> None:
    good.config.write_text('[wasm]\ndefault_engine = "wasmtime-cli"\n\n'
                           '[engines.wasmtime-cli]\npath = "/nonexistent/wasmtime"\n')
    code, checks = good.doctor()
    assert code == 1
    assert checks["engines"]["status"] == "fail"
    assert "default engine wasmtime-cli is not usable" in checks["engines"]["detail"]
    assert "runwasm engines" in checks["engines"]["fix"]


# ---------------------------------------------------------------------------------------
# cache directory


def test_cache_dir_comes_from_the_node_config(good: Node) -> None:
    cache = good.root / "node-cache"
    cache.mkdir(mode=0o755)
    good.config.write_text(f'[cache]\ndir = "{cache}"\n')
    result = good.run("doctor", "--json", "--config", str(good.config), "--crio-dir",
                      str(good.crio_dir), "--crio-config", str(good.crio_config))
    check = next(c for c in json.loads(result.stdout)["checks"]
                 if c["check"] == "cache directory")
    assert check["status"] == "fail" and str(cache) in check["detail"]
    good.config.write_text('[cache]\ndir = ""\n')
    result = good.run("doctor", "--json", "--config", str(good.config), "--crio-dir",
                      str(good.crio_dir), "--crio-config", str(good.crio_config))
    check = next(c for c in json.loads(result.stdout)["checks"]
                 if c["check"] == "cache directory")
    assert check["status"] == "ok" and "disabled" in check["detail"]


def test_cache_dir_missing_is_a_warning(good: Node) -> None:
    good.cache.rmdir()
    _, checks = good.doctor()
    assert checks["cache directory"]["status"] == "warn"


@pytest.mark.parametrize("mode", [0o755, 0o770, 0o701])
def test_cache_dir_open_to_others_fails(good: Node, mode: int) -> None:
    good.cache.chmod(mode)
    code, checks = good.doctor()
    assert code == 1
    assert checks["cache directory"]["status"] == "fail"
    assert f"mode {mode:04o}" in checks["cache directory"]["detail"]
    assert "chmod 0700" in checks["cache directory"]["fix"]


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_cache_dir_not_roots_fails(good: Node) -> None:
    os.chown(good.cache, 1000, 1000)
    code, checks = good.doctor()
    assert code == 1
    assert "owned by uid 1000" in checks["cache directory"]["detail"]


def test_cache_dir_is_a_file_fails(good: Node) -> None:
    good.cache.rmdir()
    good.cache.write_text("")
    code, checks = good.doctor()
    assert code == 1
    assert "is not a directory" in checks["cache directory"]["detail"]


# ---------------------------------------------------------------------------------------
# CRI-O


def test_no_crio_is_a_warning(node: Node) -> None:
    code, checks = node.doctor()
    assert checks["CRI-O handler"]["status"] == "warn"
    assert "is CRI-O installed" in checks["CRI-O handler"]["detail"]
    assert "runwasm install crio" in checks["CRI-O handler"]["fix"]


def test_crio_without_the_handler_fails(node: Node) -> None:
    node.crio_dir.mkdir(parents=True)
    (node.crio_dir / "01-other.conf").write_text('[crio.runtime]\nconmon_cgroup = "pod"\n')
    code, checks = node.doctor()
    assert code == 1
    assert checks["CRI-O handler"]["status"] == "fail"
    assert "no [crio.runtime.runtimes.runwasm]" in checks["CRI-O handler"]["detail"]


def handler_file(node: Node) -> Path:
    return node.crio_dir / "10-runwasm.conf"


@pytest.mark.parametrize("old, new, words", [
    ('    "run.oci.",\n', '    "run.oci.",\n    "run.oci.handler",\n',
     "ignores the whole handler"),
    ('    "run.oci.",\n', '    "run.oci.",\n    "runwasm.io/engine",\n',
     "ignores the whole handler"),
    ('runtime_type = "oci"', 'runtime_type = "vm"', 'runtime_type = "vm"'),
    ('runtime_path = "{runwasm}"', 'runtime_path = "/nonexistent/runwasm"',
     "is not an executable file"),
    ('runtime_path = "{runwasm}"', 'runtime_path = ""', "runtime_path is empty"),
    ('runtime_type = "oci"', 'runtime_type = "oci"\nmonitor_cgroup = "nowhere"',
     'monitor_cgroup = "nowhere"'),
])
def test_crio_handler_problems_fail(good: Node, old: str, new: str, words: str) -> None:
    path = handler_file(good)
    text = path.read_text()
    old = old.format(runwasm=good.runwasm)
    assert old in text
    path.write_text(text.replace(old, new.format(runwasm=good.runwasm)))
    code, checks = good.doctor()
    assert code == 1
    assert checks["CRI-O handler"]["status"] == "fail"
    assert words in checks["CRI-O handler"]["detail"]


@pytest.mark.parametrize("old, new, words", [
    ('    "module.wasm.image/variant",\n', "", "lacks module.wasm.image/variant"),
    ('runtime_type = "oci"', 'runtime_type = "oci"\nruntime_flavour = "x"',
     "keys CRI-O does not know: runtime_flavour"),
])
def test_crio_handler_doubts_warn(good: Node, old: str, new: str, words: str) -> None:
    path = handler_file(good)
    path.write_text(path.read_text().replace(old, new))
    code, checks = good.doctor()
    assert checks["CRI-O handler"]["status"] == "warn"
    assert words in checks["CRI-O handler"]["detail"]


def test_crio_handler_pointing_at_another_binary_warns(good: Node) -> None:
    other = good.root / "other-runtime"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    path = handler_file(good)
    path.write_text(path.read_text().replace(str(good.runwasm), str(other)))
    _, checks = good.doctor()
    assert checks["CRI-O handler"]["status"] == "warn"
    assert "is not this runwasm" in checks["CRI-O handler"]["detail"]


def test_crio_invalid_toml_anywhere_fails(good: Node) -> None:
    (good.crio_dir / "99-broken.conf").write_text("[crio\n")
    code, checks = good.doctor()
    assert code == 1
    assert "99-broken.conf" in checks["CRI-O handler"]["detail"]
    assert "CRI-O will not start" in checks["CRI-O handler"]["detail"]


def test_crio_merge_order_later_dropin_replaces_the_table(good: Node) -> None:
    # CRI-O replaces a runtime table as a whole when a later file names it again.
    (good.crio_dir / "20-override.conf").write_text(
        '[crio.runtime.runtimes.runwasm]\nruntime_path = "/nonexistent/runwasm"\n')
    code, checks = good.doctor()
    assert code == 1
    assert "20-override.conf" in checks["CRI-O handler"]["detail"]


def test_crio_handler_in_the_main_config(node: Node) -> None:
    node.crio_config.parent.mkdir(parents=True)
    result = node.run("install", "crio", "--file", str(node.crio_config))
    assert result.returncode == 0, result.stderr
    _, checks = node.doctor()
    assert checks["CRI-O handler"]["status"] == "ok"
    assert str(node.crio_config) in checks["CRI-O handler"]["detail"]


def test_crio_other_handler_name(node: Node) -> None:
    node.install_crio("--handler", "wasm")
    code, checks = node.doctor()
    assert checks["CRI-O handler"]["status"] == "fail"
    code, checks = node.doctor("--handler", "wasm")
    assert checks["CRI-O handler"]["status"] == "ok"


# ---------------------------------------------------------------------------------------
# CRI-O platform_runtime_paths


def test_crio_platform_ok(node: Node) -> None:
    node.install_crio("--platform")
    code, checks = node.doctor()
    assert checks["CRI-O platform"]["status"] == "ok"
    assert "routes wasi/wasm, wasi/wasm32 to runwasm" in checks["CRI-O platform"]["detail"]
    assert "CRI-O handler" not in checks  # no dedicated handler needed
    assert code == 0 or not ROOT


def test_crio_platform_delegate_mismatch_fails(node: Node) -> None:
    node.install_crio("--platform")
    other = shutil.which("true") or "/bin/true"
    node.config.write_text(f'[runtime]\ndelegate = "{other}"\n')
    code, checks = node.doctor()
    assert code == 1
    assert checks["CRI-O platform"]["status"] == "fail"
    assert "while runwasm creates containers with" in checks["CRI-O platform"]["detail"]
    assert "runtime.delegate" in checks["CRI-O platform"]["fix"]


def test_crio_platform_to_another_runtime_is_not_ours(node: Node) -> None:
    node.crio_dir.mkdir(parents=True)
    (node.crio_dir / "10-other.conf").write_text(
        '[crio.runtime.runtimes.runc.platform_runtime_paths]\n"wasi/wasm32" = "/usr/bin/crun"\n')
    code, checks = node.doctor()
    assert "CRI-O platform" not in checks
    assert checks["CRI-O handler"]["status"] == "fail"


# ---------------------------------------------------------------------------------------
# the running CRI-O (against a real one: tests/e2e/test_crio.py)


def test_live_check_only_when_crio_runs_or_is_named(good: Node) -> None:
    _, checks = good.doctor()
    if not os.path.exists("/var/run/crio/crio.sock"):
        assert "CRI-O running" not in checks


def test_live_check_without_crio_fails_with_a_fix(good: Node, tmp_path: Path) -> None:
    code, checks = good.doctor("--crio-socket", str(tmp_path / "no-crio.sock"))
    assert code == 1
    live = checks["CRI-O running"]
    assert live["status"] == "fail"
    assert "cannot ask CRI-O at" in live["detail"]
    assert "start CRI-O" in live["fix"]

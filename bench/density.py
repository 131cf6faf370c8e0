"""Density benchmark: what an idle container costs, per engine, beside runc and crun.

    .venv/bin/python bench/density.py [--containers N] [--settle S] [--root DIR]

For runc busybox `sleep`, runwasm on each installed engine (a WASI guest in `sleep`,
examples/modules/tool.c) and crun's WasmEdge and Wasmtime handlers (../shared/peers),
it starts N idle containers, waits for them to settle, and reads the memory charged to
each container's own cgroup (cgroup v1 `memory.usage_in_bytes`, v2 `memory.current`),
and the anonymous memory of the container's processes (smaps_rollup). For CLI engines
it also shows the launcher's own share (the resident parent of the engine). Every engine
runs once first, so its files are in the page cache, as on a node that already runs it:
the charge is what one more container costs. Run as root; everything lives in a private
runc root and a temporary directory, removed on exit, failure or Ctrl-C.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import (  # noqa: E402
    MIB,
    RUNWASM,
    Bench,
    BenchError,
    anonymous,
    charge,
    memory_cgroup,
    processes,
)

DEFAULT_ROOT = "/run/runwasm-bench-density"
IDLE_MAX_MIB = 5.0  # target: an idle tiny Wasm container on the default engine
LAUNCHER_MAX_MIB = 3.0  # target: what the launcher adds to a CLI engine


CLI_ENGINES = ("runwasm, wasmtime-cli", "runwasm, wasmedge", "runwasm, wasmer-cli")


class Case:
    """N containers of one kind: how to start one, and how to ask its runtime for it."""

    def __init__(self, label: str, runtime: str, root: str, start: list[str],
                 env: dict[str, str] | None, bundles: list[Path]) -> None:
        self.label = label
        self.runtime = runtime  # for state and delete
        self.root = root
        self.start = start  # argv before the bundle and id: ... run --detach
        self.env = env
        self.bundles = bundles
        self.ids: list[str] = []
        self.rows: list[dict[str, float]] = []

    def launch(self, bench: Bench, name: str, bundle: Path) -> str:
        container = bench.container_id(name, runtime=self.runtime, root=self.root,
                                       env=self.env)
        with tempfile.TemporaryFile() as err:  # not a pipe: the container holds it open
            done = subprocess.run([*self.start, "--bundle", str(bundle), container],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err, env=self.env, check=False)
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
        if done.returncode != 0:
            benchlib.delete(self.root, container, self.runtime, self.env)
            raise BenchError(f"{self.label}: {message}")
        return container

    def pid(self, container: str) -> int:
        out = subprocess.run([self.runtime, "--root", self.root, "state", container],
                             capture_output=True, env=self.env, check=True).stdout
        state = json.loads(out)
        if state.get("status") != "running":
            raise BenchError(f"{self.label}: container {container} is {state.get('status')}")
        return int(state["pid"])


def measure(case: Case, pid: int) -> dict[str, float]:
    cgroup = memory_cgroup(pid)
    pids = processes(cgroup)
    launcher = anonymous(pid) if len(pids) > 1 else 0.0  # the engine is a child of pid 1
    return {"charge": charge(cgroup) / MIB, "anon": sum(anonymous(p) for p in pids) / MIB,
            "launcher": launcher / MIB, "processes": float(len(pids)),
            "threads": float(sum(threads(p) for p in pids))}


def threads(pid: int) -> int:
    """The process's threads: each has a stack, and engines may start one per CPU."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:  # exited meanwhile
        return 0


def cases(bench: Bench, n: int, notes: list[str]) -> list[Case]:
    tmp = bench.tmp
    tool = benchlib.bundles.c_module(benchlib.bundles.MODULE_SOURCES / "tool.c",
                                     tmp / "tool.wasm")
    found = [Case("runc, busybox sleep", "runc", bench.root,
                  ["runc", "--root", bench.root, "run", "--detach"], None,
                  [benchlib.busybox_bundle(tmp / f"busybox{i}", ["sleep", "1000"])
                   for i in range(n)])]
    engines = benchlib.engine_cases()
    bench.write_config({c.name: c.table for c in engines if not c.why_not and c.table})
    for e, engine in enumerate(engines):
        label = f"runwasm, {engine.label}"
        if engine.why_not:
            notes.append(f"{label}: skipped ({engine.why_not})")
            continue
        bundles = [benchlib.wasm_bundle(tmp / f"wasm{e}-{i}", tool, ["sleep", "1000"],
                                        engine.annotations()) for i in range(n)]
        found.append(Case(label, "runc", bench.root,
                          [str(RUNWASM), "--root", bench.root, "run", "--detach"], bench.env,
                          bundles))
    peers, why = benchlib.peers(bench)
    if peers is None:
        notes.append(f"crun: skipped ({why})")
        return found
    crun_root = str(tmp / "crun-root")
    for handler in ("wasmedge", "wasmtime"):
        bundles = [benchlib.wasm_bundle(tmp / f"crun-{handler}-{i}", tool, ["sleep", "1000"],
                                        benchlib.COMPAT) for i in range(n)]
        binary = peers.binary(f"crun-{handler}")
        found.append(Case(f"crun {handler} handler", binary, crun_root,
                          [binary, "--root", crun_root, "run", "--detach"], peers.env,
                          bundles))
    return found


def run_case(bench: Bench, case: Case, settle: float) -> None:
    print(f"{case.label}: {len(case.bundles)} containers", file=sys.stderr, flush=True)
    # One first, stopped again: the engine's files are then in the page cache.
    warm = case.launch(bench, f"{id(case)}-warm", case.bundles[0])
    benchlib.delete(case.root, warm, case.runtime, case.env)
    for i, bundle in enumerate(case.bundles):
        case.ids.append(case.launch(bench, f"{id(case)}-{i}", bundle))
    time.sleep(settle)
    case.rows = [measure(case, case.pid(c)) for c in case.ids]
    for container in case.ids:
        benchlib.delete(case.root, container, case.runtime, case.env)


def report(done: list[Case], notes: list[str], n: int) -> None:
    width = max(len(c.label) for c in done)
    print()
    print(f"{'idle container':<{width}}  {'charge':>8}  {'min':>7}  {'max':>7}  {'anon':>7}  "
          f"{'launcher':>8}  {'procs':>5}  {'threads':>7}   (MiB per container, median of {n})")
    medians: dict[str, dict[str, float]] = {}
    for case in done:
        m = {k: statistics.median(r[k] for r in case.rows) for k in case.rows[0]}
        medians[case.label] = m
        charges = [r["charge"] for r in case.rows]
        launcher = f"{m['launcher']:8.2f}" if m["launcher"] else f"{'':8}"
        print(f"{case.label:<{width}}  {m['charge']:8.2f}  {min(charges):7.2f}  "
              f"{max(charges):7.2f}  {m['anon']:7.2f}  {launcher}  {m['processes']:5.0f}  "
              f"{m['threads']:7.0f}")
    for note in notes:
        print(f"  ({note})")
    print()
    default = medians.get("runwasm, wasmtime (default, in-process)")
    if default:
        print(f"target (idle wasm container, default engine <= {IDLE_MAX_MIB:g} MiB): "
              f"{'met' if default['charge'] <= IDLE_MAX_MIB else 'NOT MET'} "
              f"({default['charge']:.2f} MiB)")
    for label, m in medians.items():
        if m["launcher"] and label in CLI_ENGINES:
            verdict = "met" if m["launcher"] <= LAUNCHER_MAX_MIB else "NOT MET"
            print(f"target ({label}: launcher adds <= {LAUNCHER_MAX_MIB:g} MiB anonymous): "
                  f"{verdict} ({m['launcher']:.2f} MiB of {m['charge']:.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--containers", type=int, default=10, help="idle containers per case")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to wait after the last start")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="runc root directory to use")
    args = parser.parse_args(argv)
    if args.containers < 1:
        parser.error("--containers must be >= 1")
    if os.geteuid() != 0:
        print("density.py: run as root (it creates containers)", file=sys.stderr)
        return 2
    benchlib.on_sigterm_interrupt()
    bench = Bench(args.root, Path(tempfile.mkdtemp(prefix="runwasm-density-")))
    print(f"python {sys.version.split()[0]}, {benchlib.load_line()}", file=sys.stderr)
    notes: list[str] = []
    done: list[Case] = []
    try:
        for case in cases(bench, args.containers, notes):
            try:
                run_case(bench, case, args.settle)
            except (BenchError, subprocess.CalledProcessError) as e:
                notes.append(f"{case.label}: does not run here: {str(e).splitlines()[0]}")
                continue
            done.append(case)
    except (BenchError, OSError) as e:
        print(f"density.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("density.py: interrupted", file=sys.stderr)
        return 130
    finally:
        benchlib.ignore_signals()
        load = benchlib.load_line()
        bench.cleanup()
    print(benchlib.run_line("", load))
    report(done, notes, args.containers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

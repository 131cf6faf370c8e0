"""runwasm under a real CRI-O, through crictl, the way a kubelet drives it.

One private CRI-O for the module (crio_support.Crio): pods pick runwasm with
`crictl runp --runtime runwasm`, as a RuntimeClass does, on the handler that `runwasm
install crio` wrote; a `wasi/wasm32` image goes through the default runc handler by
`platform_runtime_paths`. Figures each test saw are in its assertion messages.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crio_support import (
    BUSYBOX_IMAGE,
    HANDLER,
    KIT,
    WASI_IMAGE,
    Crio,
    locate,
)
from e2e_support import ENGINE, VARIANT, must, run

from runwasm import __version__

BINARIES, MISSING = locate()
COMPAT = {VARIANT: "compat"}
SMART = {VARIANT: "compat-smart"}


@pytest.fixture(scope="module")
def crio() -> Iterator[Crio]:
    if BINARIES is None:
        if KIT.is_dir():
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    missing = [t for t in ("buildah", "conmon", "runc", "ip") if shutil.which(t) is None]
    if missing or not Path("/usr/lib/cni/bridge").exists():
        pytest.fail(f"missing {', '.join(missing) or '/usr/lib/cni/bridge'}: run "
                    "scripts/setup.sh (make setup)")
    # A short base: conmon's attach sockets live below it, and unix socket paths are short.
    base = Path(tempfile.mkdtemp(prefix="rwcrio-", dir="/tmp"))
    daemon = Crio(base, BINARIES)
    try:
        daemon.prepare()
        daemon.start()
        yield daemon
    finally:
        left = daemon.stop()
        if not left:
            shutil.rmtree(base, ignore_errors=True)
    assert not left, f"the CRI-O session left behind: {left}"


def figure(text: str) -> None:
    """What a test saw, for the record (shown with pytest -s)."""
    print(f"[crio] {text}")


def journal_of(crio: Crio, container_id: str) -> list[dict[str, str]]:
    return crio.journal.wait_for(lambda e: e.get("CONTAINER_ID_FULL") == container_id)


# ---------------------------------------------------------------------------------------


def test_handler_accepted_and_version_logged(crio: Crio) -> None:
    handlers = {h.get("name") for h in crio.info()["runtimeHandlers"]}
    assert HANDLER in handlers, handlers
    log = crio.log_since_start()
    assert f"Using runtime handler {HANDLER} version {__version__}, runc version" in log
    # The drop-in as `runwasm install crio` wrote it, pointing at this session's runwasm.
    dropin = (crio.dropins / "10-runwasm.conf").read_text()
    assert f'runtime_path = "{crio.runwasm}"' in dropin
    assert f'runtime_path = \\"{crio.runwasm}\\"' in log or f'"{crio.runwasm}"' in log
    figure(f"runtimeHandlers {sorted(h for h in handlers if h)}; "
           + log[log.index(f"Using runtime handler {HANDLER}"):].split('"')[0].strip())


def test_wasm_pod_args_env_volume_logs_exit_code(crio: Crio, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from the host\n")
    pod = crio.run_pod("hello", COMPAT)
    try:
        hello, status = pod.run("hello", args=["7", "from-crictl"],
                                env={"GREETING": "hello from the pod spec"})
        assert status["exitCode"] == 7, status
        assert crio.logs(hello).splitlines() == [
            "Hello from WebAssembly!", "argv[0]=/hello.wasm", "argv[1]=7",
            "argv[2]=from-crictl", "GREETING=hello from the pod spec"]
        reader, status = pod.run("reader", command=["/tool.wasm"],
                                 args=["read", "/data/in.txt"], mounts={"/data": data})
        assert (status["exitCode"], crio.logs(reader)) == (0, "from the host\n")
        _, status = pod.run("writer", command=["/tool.wasm"],
                            args=["write", "/data/out.txt", "written by wasm"],
                            mounts={"/data": data})
        assert status["exitCode"] == 0
        assert (data / "out.txt").read_text() == "written by wasm"
        figure(f"hello exit {7}, reader exit 0, writer exit 0, volume written")
        # The pod network is the session's bridge, in its private subnet.
        ip = json.loads(must(crio.crictl("inspectp", pod.id)))["status"]["network"]["ip"]
        assert ip.startswith(crio.subnet.rsplit(".", 1)[0] + "."), (ip, crio.subnet)
        figure(f"pod IP {ip} in {crio.subnet}")
        cgroups = crio.bundle_config(hello)["linux"]["cgroupsPath"]
        assert cgroups.startswith(crio.cgroup_parent + "/"), cgroups
    finally:
        pod.remove()


def installed_engines(crio: Crio) -> dict[str, str]:
    """engine -> why it is not installed ("" when it is), as the session's runwasm sees it."""
    out = must(run([str(crio.runwasm), "engines", "--json"], env=crio.env()))
    return {e["name"]: "" if e["installed"] else e["problem"] for e in json.loads(out)}


@pytest.mark.parametrize("engine", ["wasmtime", "wasmtime-cli", "wasmer", "wasmedge"])
def test_engine_chosen_per_pod(crio: Crio, engine: str) -> None:
    problem = installed_engines(crio)[engine]
    if problem and engine not in ("wasmtime", "wasmtime-cli"):  # these two setup installs
        pytest.skip(f"{engine} is not installed here: {problem}")
    pod = crio.run_pod(f"engine-{engine}", {ENGINE: engine})
    try:
        cid, status = pod.run("hello", args=["3", engine])
        assert status["exitCode"] == 3, (engine, status, crio.logs(cid))
        assert f"argv[2]={engine}" in crio.logs(cid)
        parts = [p for e in journal_of(crio, cid) for p in e["MESSAGE"].split("; ")]
        assert any(p == f"engine {engine}" or p.startswith(f"engine {engine} ")
                   for p in parts), parts
        figure(f"engine {engine}: exit {status['exitCode']}, journal: "
               f"{[p for p in parts if p.startswith('engine ')]}")
    finally:
        pod.remove()


def test_limits_from_pod_annotations(crio: Crio) -> None:
    pod = crio.run_pod("limits", {**COMPAT, "runwasm.io/timeout": "1s",
                                  "runwasm.io/max-memory": "4Mi"})
    try:
        start = time.monotonic()
        spin, status = pod.run("spin", command=["/tool.wasm"], args=["spin"])
        took = time.monotonic() - start
        assert status["exitCode"] == 124, status
        assert "ran past its timeout" in crio.logs(spin)
        assert took < 10, f"timeout 1s took {took:.1f}s"
        hog, status = pod.run("hog", command=["/hog.wasm"])
        assert status["exitCode"] == 122, (status, crio.logs(hog))
        assert "memory limit" in crio.logs(hog)
        figure(f"timeout=1s: exit 124 after {took:.2f}s; max-memory=4Mi: exit 122")
    finally:
        pod.remove()


def test_stop_of_spinning_guest(crio: Crio) -> None:
    pod = crio.run_pod("stop", COMPAT)
    try:
        cid = pod.start("spin", command=["/tool.wasm"], args=["spin"])
        deadline = time.monotonic() + 20
        while "spinning" not in crio.logs(cid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert crio.status(cid)["state"] == "CONTAINER_RUNNING"
        start = time.monotonic()
        must(crio.crictl("stop", "--timeout", "10", cid))
        took = time.monotonic() - start
        status = crio.status(cid)
        assert status["exitCode"] == 143, status
        assert took < 2, f"crictl stop took {took:.2f}s"
        figure(f"crictl stop of a spinning guest: {took:.2f}s, exit {status['exitCode']}")
    finally:
        pod.remove()


def test_exec_streaming_and_sync(crio: Crio) -> None:
    pod = crio.run_pod("exec", COMPAT)
    try:
        cid = pod.start("sleeper", command=["/tool.wasm"], args=["sleep", "120"])
        streamed = crio.crictl("exec", cid, "/tool.wasm", "ls", "/")
        assert streamed.returncode == 0, streamed.stderr
        assert {"tool.wasm", "hello.wasm"} <= set(streamed.stdout.split())
        synced = crio.crictl("exec", "--sync", cid, "/tool.wasm", "exit", "5")
        assert "'/tool.wasm exit 5' exited with 5" in synced.stderr, synced
        synced = crio.crictl("exec", "--sync", cid, "/hello.wasm", "0", "via-execsync")
        assert "argv[2]=via-execsync" in synced.stdout, synced
        message = "/bin/sh is not a WebAssembly module in the image"
        for mode in ([], ["--sync"]):
            refused = crio.crictl("exec", *mode, cid, "/bin/sh", "-c", "id")
            assert refused.returncode != 0
            assert message in refused.stdout + refused.stderr, (mode, refused)
            figure(f"exec {' '.join(mode) or 'streaming'} /bin/sh: exit {refused.returncode}, "
                   f"{message!r} shown")
    finally:
        pod.remove()


def test_wasm_and_busybox_sidecar_share_a_volume(crio: Crio, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    pod = crio.run_pod("sidecar", SMART)
    try:
        sidecar = pod.start("sidecar", image=BUSYBOX_IMAGE, command=["/bin/sh", "-c"],
                            args=["while [ ! -f /shared/msg ]; do sleep 0.1; done; "
                                  "cat /shared/msg; echo; id -u"],
                            mounts={"/shared": shared})
        _, status = pod.run("app", command=["/tool.wasm"],
                            args=["write", "/shared/msg", "hello sidecar"],
                            mounts={"/shared": shared})
        assert status["exitCode"] == 0
        status = crio.wait_exited(sidecar)
        assert status["exitCode"] == 0
        assert crio.logs(sidecar).splitlines() == ["hello sidecar", "0"]
        assert crio.bundle_config(sidecar)["process"]["args"][0] == "/bin/sh"
        figure("compat-smart pod: wasm wrote the volume (exit 0), busybox read it (exit 0)")
    finally:
        pod.remove()


def test_linux_pod_on_runwasm_runs_unchanged(crio: Crio) -> None:
    pod = crio.run_pod("linux")
    try:
        cid, status = pod.run("busybox", image=BUSYBOX_IMAGE, command=["/bin/sh", "-c"],
                              args=["echo linux on $(cat /proc/1/comm); exit 3"])
        assert status["exitCode"] == 3
        assert crio.logs(cid) == "linux on sh\n"
        bundle = crio.runroot / "overlay-containers" / cid / "userdata"
        assert not (bundle / ".runwasm").exists()  # config.json never rewritten
        messages = [e["MESSAGE"] for e in journal_of(crio, cid)]
        assert messages == ["linux: no Wasm annotation"], messages
        figure(f"busybox on runwasm: exit {status['exitCode']}, config.json not rewritten")
    finally:
        pod.remove()


@pytest.mark.parametrize(("annotations", "command", "error"), [
    (COMPAT, ["/missing.wasm"], "module /missing.wasm not found in the image"),
    (COMPAT, ["/notwasm.txt"], "/notwasm.txt is not WebAssembly"),
    ({ENGINE: "v8"}, [], "invalid annotation runwasm.io/engine='v8': unknown engine"),
    ({**COMPAT, "runwasm.io/timeout": "soon"}, [], "runwasm.io/timeout"),
], ids=["missing-module", "not-wasm", "unknown-engine", "invalid-value"])
def test_errors_reach_the_cri_error(crio: Crio, annotations: dict[str, str],
                                    command: list[str], error: str) -> None:
    storage = crio.root / "overlay-containers"
    before = set(p.name for p in storage.iterdir())
    pod = crio.run_pod("error", annotations)
    result = pod.create("bad", command=command)
    assert result.returncode != 0
    assert "container create failed: runwasm: " in result.stderr, result.stderr
    assert error in result.stderr, result.stderr
    figure("CRI error: " + result.stderr.strip().splitlines()[-1][-160:])
    errors = crio.journal.wait_for(
        lambda e: e.get("PRIORITY") == "3" and error in e["MESSAGE"])
    assert errors and errors[0]["SYSLOG_IDENTIFIER"] == "runwasm"
    pod.remove()
    assert not [m for m in crio.leftovers() if "runc state" in m or "/merged" in m]
    assert set(p.name for p in storage.iterdir()) == before
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if pod.id in line]


def test_platform_routing_to_runwasm_and_to_a_wrapper(crio: Crio) -> None:
    handlers = {h.get("name"): h for h in crio.info()["runtimeHandlers"]}
    assert "runc" in handlers
    seen = {}
    wrapper = crio.base / "bin" / "runwasm-logging-shim"
    calls = crio.base / "shim-calls"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {crio.runwasm} "$@"\n')
    wrapper.chmod(0o755)
    try:
        for label, path in (("runwasm", crio.runwasm), ("wrapper", wrapper)):
            if label == "wrapper":
                crio.install_dropins(wrapper)
                crio.restart()
            pod = crio.run_pod(f"platform-{label}", runtime=None)  # the default handler
            try:
                cid, status = pod.run("app", image=WASI_IMAGE, args=["4", label])
                spec = crio.bundle_config(cid)
                annotation = spec["annotations"]["platform-runtime-path.crio.io"]
                assert annotation == str(path)
                assert status["exitCode"] == 4, (label, status, crio.logs(cid))
                assert f"argv[2]={label}" in crio.logs(cid)
                seen[label] = status["exitCode"]
            finally:
                pod.remove()
        assert " create " in f" {calls.read_text()} ", "the shim was not used for create"
        assert seen == {"runwasm": 4, "wrapper": 4}
        verbs = [next(w for w in c.split() if w[0] != "-")
                 for c in calls.read_text().splitlines()]
        figure(f"platform routing exit codes {seen}; the shim ran: {verbs}")
    finally:
        if wrapper.exists():
            crio.install_dropins(crio.runwasm)
            crio.restart()


def test_seccomp_runtime_default(crio: Crio) -> None:
    pod = crio.run_pod("seccomp", SMART, seccomp="RuntimeDefault")
    try:
        wasm, status = pod.run("wasm", args=["0", "seccomp"])
        assert status["exitCode"] == 0, crio.logs(wasm)
        linux, status = pod.run("linux", image=BUSYBOX_IMAGE, command=["/bin/echo"],
                                args=["linux under seccomp"])
        assert (status["exitCode"], crio.logs(linux)) == (0, "linux under seccomp\n")
        for cid in (wasm, linux):
            seccomp = crio.bundle_config(cid)["linux"].get("seccomp") or {}
            assert seccomp.get("defaultAction") == "SCMP_ACT_ERRNO", cid
        figure("RuntimeDefault seccomp: wasm exit 0, busybox exit 0")
    finally:
        pod.remove()


def test_crio_restart_keeps_wasm_containers(crio: Crio) -> None:
    pod = crio.run_pod("restart", COMPAT)
    try:
        ids = [pod.start(f"sleeper{i}", command=["/tool.wasm"], args=["sleep", "300"])
               for i in range(2)]
        crio.restart()
        assert set(ids) <= set(pod.container_ids())
        for cid in ids:
            assert crio.status(cid)["state"] == "CONTAINER_RUNNING"
        for cid in ids:
            start = time.monotonic()
            must(crio.crictl("stop", "--timeout", "10", cid))
            took = time.monotonic() - start
            assert crio.status(cid)["exitCode"] == 143
            assert took < 2, f"stop after restart took {took:.2f}s"
            figure(f"after CRI-O restart: {cid[:12]} running, stopped in {took:.2f}s, exit 143")
    finally:
        pod.remove()


def test_decisions_in_the_journal(crio: Crio) -> None:
    pod = crio.run_pod("journal", COMPAT)
    try:
        first, _ = pod.run("first", args=["0"])
        second, _ = pod.run("second", args=["0"])
        for cid, cache in ((first, "cache "), (second, "cache hit")):
            entries = journal_of(crio, cid)
            assert len(entries) == 1, entries  # one datagram per create
            entry = entries[0]
            assert entry["SYSLOG_IDENTIFIER"] == "runwasm"
            assert entry["PRIORITY"] == "6"
            assert entry["CONTAINER_ID"] == cid[:12]
            message = entry["MESSAGE"]
            assert message.startswith(f"wasm: {VARIANT}=compat: /hello.wasm"), message
            assert "engine wasmtime " in message and cache in message, message
            figure(f"journal entry {cid[:12]}: {message}")
    finally:
        pod.remove()


def doctor(crio: Crio, dropins: Path) -> tuple[int, dict[str, Any]]:
    result = run([str(crio.runwasm), "doctor", "--json", "--crio-dir", str(dropins),
                  "--crio-config", str(crio.config), "--crio-socket", str(crio.socket),
                  "--cache-dir", str(crio.cache)], env=crio.env())
    data: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, {c["check"]: c for c in data["checks"]}


def test_doctor_against_the_live_crio(crio: Crio) -> None:
    code, checks = doctor(crio, crio.dropins)
    assert code == 0, checks
    assert all(c["status"] == "ok" for c in checks.values()), checks
    assert f"handler {HANDLER} loaded" in checks["CRI-O running"]["detail"]
    # A drop-in with an annotation CRI-O refuses: CRI-O drops the handler, doctor fails.
    dropin = crio.dropins / "10-runwasm.conf"
    good = dropin.read_text()
    dropin.write_text(good.replace('"run.oci.",', '"run.oci.",\n    "run.oci.handler",'))
    try:
        crio.restart()
        assert HANDLER not in {h.get("name") for h in crio.info()["runtimeHandlers"]}
        code, checks = doctor(crio, crio.dropins)
        assert code == 1
        assert checks["CRI-O handler"]["status"] == "fail"
        assert "'run.oci.handler'" in checks["CRI-O handler"]["detail"]
        live = checks["CRI-O running"]
        assert live["status"] == "fail", live
        assert f"has not loaded handler {HANDLER}" in live["detail"]
        assert "runwasm install crio" in live["fix"]
        figure(f"doctor with a refused annotation: exit {code}; {live['detail'][:120]}")
    finally:
        dropin.write_text(good)
        crio.restart()
    assert HANDLER in {h.get("name") for h in crio.info()["runtimeHandlers"]}


"""Hostile bundles and annotations, in-process against create.prepare: each gives one
RunwasmError line of bounded length and leaves the bundle exactly as it was; a Linux
container's spec is judged by runc, not here."""

from __future__ import annotations

import copy
import json
import os
import socket
from pathlib import Path
from typing import Any, Callable

import pytest
from hostile_support import (
    COMPAT,
    CONFIG,
    SMART,
    attempt,
    error_of,
    runc_spec,
    wasm,
    write_bundle,
)

from runwasm.handler.classify import Decision
from runwasm.handler.main import one_line


@pytest.fixture(scope="module")
def base_spec() -> dict[str, Any]:
    return runc_spec()


@pytest.fixture(scope="module")
def hello() -> bytes:
    return wasm()


def mutated(base: dict[str, Any], change: Callable[[dict[str, Any]], object]
            ) -> dict[str, Any]:
    spec = copy.deepcopy(base)
    change(spec)
    return spec


def test_the_base_bundle_is_accepted(tmp_path: Path, base_spec: dict[str, Any],
                                     hello: bytes) -> None:
    decision = attempt(write_bundle(tmp_path, base_spec, hello))
    assert isinstance(decision, Decision) and decision.wasm, decision


# -- config.json that is not JSON, or that the parser cannot hold --------------------------

NOT_JSON = {
    "empty": (b"", "invalid JSON at offset 0"),
    "truncated": (b'{"ociVersion": "1.0.2", "process": {', "Expecting property name"),
    "bad escape": (b'{"a": "\\x"}', "Invalid \\escape"),
    "control character": (b'{"a": "\x01"}', "Invalid control character"),
    "missing colon": (b'{"a" 1}', "Expecting ':' delimiter"),
    "bad unicode escape": (b'{"a": "\\ud8"}', "Invalid \\uXXXX escape"),
    "trailing data": (b'{"a": 1} x', "extra data after JSON"),
    "single quotes": (b"{'a': 1}", "Expecting property name"),
    "deeply nested array": (b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}",
                            "nested too deeply"),
    "deeply nested object": (b'{"a": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
                             "nested too deeply"),
    "huge integer": (b'{"a": ' + b"9" * 100000 + b"}", "Exceeds the limit"),
    "not an object": (b"[1, 2]", "not a JSON object"),
    "a string": (b'"config"', "not a JSON object"),
    "NUL byte": (b'{"a": 1}\x00', "extra data"),
    "UTF-16": ('{"a": 1}'.encode("utf-16"), "invalid JSON"),
}


@pytest.mark.parametrize("case", sorted(NOT_JSON))
def test_config_not_json(tmp_path: Path, case: str) -> None:
    raw, fragment = NOT_JSON[case]
    message = error_of(write_bundle(tmp_path, raw))
    assert message.startswith(f"parse {tmp_path}/config.json: ")
    assert fragment in message


def test_config_missing(tmp_path: Path) -> None:
    tmp_path.joinpath("rootfs").mkdir()
    assert error_of(tmp_path) == f"read {tmp_path}/config.json: No such file or directory"


def test_bundle_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "bundle"
    path.write_text("x")
    assert error_of(path) == f"read {path}/config.json: Not a directory"


def test_config_is_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "config.json")  # opening it would wait for a writer
    assert error_of(tmp_path) == f"read {tmp_path}/config.json: a FIFO, not a regular file"


def test_non_utf8_strings_are_runc_s_to_judge(tmp_path: Path, base_spec: dict[str, Any]
                                              ) -> None:
    """runc's decoder turns bytes that are not UTF-8 into U+FFFD; runwasm reads them so."""
    spec = mutated(base_spec, lambda s: s.pop("annotations"))
    raw = json.dumps(spec).encode().replace(b'"TERM=xterm"', b'"TERM=\xff\xfe"')
    bundle = write_bundle(tmp_path, raw)
    decision = attempt(bundle)
    assert isinstance(decision, Decision) and not decision.wasm
    assert (bundle / "config.json").read_bytes() == raw


# -- wrong JSON types where runwasm reads them (every container) ---------------------------

def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = spec
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = spec
        for part in parents:
            target = target[part]
        del target[last]
    return change


WRONG_TYPES: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "annotations a list": (_set("annotations", ["compat"]),
                           "annotations: expected an object, not an array"),
    "annotation a number": (_set("annotations", {"runwasm.io/engine": 5}),
                            "invalid annotation runwasm.io/engine: expected a string, not a "
                            "number"),
    "annotation null": (_set("annotations", {"module.wasm.image/variant": None}),
                        "no Wasm annotation"),  # null: absent, as Go reads it (an empty string)
    "annotation an object": (_set("annotations", {"run.oci.handler": {"a": 1}}),
                             "invalid annotation run.oci.handler: expected a string, not an "
                             "object"),
    "platform path with NUL": (_set("annotations", {"platform-runtime-path.crio.io": "/a\0b"}),
                               "invalid annotation platform-runtime-path.crio.io='/a\\x00b': "
                               "contains a NUL byte"),
    "platform path a lone surrogate": (
        _set("annotations", {"platform-runtime-path.crio.io": "/\ud800"}),
        "is not valid Unicode"),
    "root a string": (_set("root", "rootfs"), "root: expected an object, not a string"),
    "root.path a number": (_set("root.path", 1), "root.path: expected a string, not a number"),
    "root.path with NUL": (_set("root.path", "root\0fs"), "root.path contains a NUL byte"),
    "root.path missing directory": (_set("root.path", "nope"),
                                    "nope: No such file or directory"),
    "root.path a file": (_set("root.path", "config.json"), "config.json: not a directory"),
    "root missing": (_drop("root"), "config.json: root is missing (runc needs root.path)"),
    "root null": (_set("root", None), "config.json: root is missing (runc needs root.path)"),
    "root.path empty": (_set("root.path", ""), "module /app.wasm not found in the image"),
    "process missing": (_drop("process"), "process.args is empty, no module to run"),
    "process a list": (_set("process", []), "process: expected an object, not an array"),
    "args a string": (_set("process.args", "/app.wasm"),
                      "process.args: expected an array, not a string"),
    "args empty": (_set("process.args", []), "process.args is empty"),
    "args[0] a number": (_set("process.args", [5]),
                         "process.args[0]: expected a string, not a number"),
    "args[1] null": (_set("process.args", ["/app.wasm", None]),
                     "process.args[1]: expected a string, not null"),
    "args[0] with NUL": (_set("process.args", ["/app.wasm\0x"]),
                         "process.args[0] contains a NUL byte"),
    "args[0] a lone surrogate": (_set("process.args", ["/\udc00.wasm"]),
                                 "process.args[0] is not valid Unicode"),
    "cwd a number": (_set("process.cwd", 0), "process.cwd: expected a string, not a number"),
    "cwd with NUL": (_set("process.cwd", "/\0"), "process.cwd contains a NUL byte"),
    "env a string": (_set("process.env", "PATH=/bin"),
                     "process.env: expected an array, not a string"),
    "env entry a number": (_set("process.env", [1]),
                           "process.env[0]: expected a string, not a number"),
    "env entry with NUL": (_set("process.env", ["A=\0"]),
                           "process.env[0] contains a NUL byte"),
    "module missing": (_set("process.args", ["/nope.wasm"]),
                       "module /nope.wasm not found in the image"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_fields_runwasm_reads(tmp_path: Path, base_spec: dict[str, Any], hello: bytes,
                              case: str) -> None:
    change, fragment = WRONG_TYPES[case]
    bundle = write_bundle(tmp_path, mutated(base_spec, change), hello)
    result = attempt(bundle)
    if fragment == "no Wasm annotation":
        assert isinstance(result, Decision) and result.reason == fragment
        return
    assert not isinstance(result, Decision), result.reason
    assert fragment in result.message


# -- a Wasm container's whole spec, before it is rewritten ---------------------------------

WASM_SPEC: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "env without =": (_set("process.env", ["PATH=/bin", "JUSTANAME"]),
                      "process.env[1] 'JUSTANAME' has no '='"),
    "cwd relative": (_set("process.cwd", "data"), "process.cwd must be an absolute path"),
    "cwd empty": (_set("process.cwd", ""), "process.cwd must be an absolute path"),
    "env empty name": (_set("process.env", ["=value"]),
                       "process.env[0] '=value' has an empty name"),
    "terminal a string": (_set("process.terminal", "false"),
                          "process.terminal: expected a boolean, not a string"),
    "uid negative": (_set("process.user.uid", -1), "process.user.uid: -1 is out of range for u32"),
    "uid a float": (_set("process.user.uid", 1.5),
                    "process.user.uid: expected an integer, not a number"),
    "uid huge": (_set("process.user.uid", 10**30), "is out of range for u32"),
    "gid true": (_set("process.user.gid", True),
                 "process.user.gid: expected an integer, not a boolean"),
    "rlimit hard a string": (_set("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": "1024",
                                                       "soft": 1024}]),
                             "process.rlimits[0].hard: expected an integer, not a string"),
    "capabilities a list": (_set("process.capabilities", ["CAP_KILL"]),
                            "process.capabilities: expected an object, not an array"),
    "mounts an object": (_set("mounts", {"destination": "/data"}),
                         "mounts: expected an array, not an object"),
    "mount a string": (_set("mounts", ["/data"]), "mounts[0]: expected an object, not a string"),
    "mount without destination": (_set("mounts", [{"type": "tmpfs", "source": "tmpfs"}]),
                                  "mounts[0].destination is missing"),
    "mount options a string": (_set("mounts.0.options", "ro"),
                               "mounts[0].options: expected an array, not a string"),
    "mount source with NUL": (_set("mounts.0.source", "pr\0oc"),
                              "mounts[0].source contains a NUL byte"),
    "memory limit a string": (_set("linux.resources", {"memory": {"limit": "1Gi"}}),
                              "linux.resources.memory.limit: expected an integer, not a string"),
    "namespaces an object": (_set("linux.namespaces", {"type": "pid"}),
                             "linux.namespaces: expected an array, not an object"),
    "sysctl value a number": (_set("linux.sysctl", {"net.ipv4.ip_forward": 1}),
                              "linux.sysctl['net.ipv4.ip_forward']: expected a string"),
    "maskedPaths entry a number": (_set("linux.maskedPaths", [1]),
                                   "linux.maskedPaths[0]: expected a string, not a number"),
    "hooks a list": (_set("hooks", []), "hooks: expected an object, not an array"),
    "hook path a number": (_set("hooks", {"prestart": [{"path": 1}]}),
                           "hooks.prestart[0].path: expected a string, not a number"),
    "an annotation a number": (_set("annotations", {**COMPAT, "other": 1}),
                               "annotations['other']: expected a string, not a number"),
    "windows a string": (_set("windows", "x"), "windows: expected an object, not a string"),
    "Process beside process": (_set("Process", {"args": ["/bin/sh"]}),
                               "Process: runc would read this key as process"),
    "Root beside root": (_set("Root", {"path": "/"}), "Root: runc would read this key as root"),
    "long-s fold": (_set("proce\u017fs", {}), "runc would read this key as process"),
    "Kelvin fold": (_set("linux.resources", {"memory": {"\u212aernel": 1}}),
                    "runc would read this key as linux.resources.memory.kernel"),
    "unknown key nested deeply": (_set("x-extension", json.loads("[" * 100 + "]" * 100)),
                                  "x-extension is nested too deeply"),
    "ociVersion a number": (_set("ociVersion", 1), "ociVersion: expected a string"),
}


@pytest.mark.parametrize("case", sorted(WASM_SPEC))
def test_wasm_spec_types(tmp_path: Path, base_spec: dict[str, Any], hello: bytes,
                         case: str) -> None:
    change, fragment = WASM_SPEC[case]
    spec = mutated(base_spec, change)
    message = error_of(write_bundle(tmp_path, spec, hello))
    assert message.startswith(f"{tmp_path}/config.json: ") and fragment in message, message
    # the same spec as a Linux container is runc's to judge: passed on untouched
    linux = dict(spec, annotations={})
    bundle = write_bundle(tmp_path / "linux", linux, hello)
    raw = (bundle / "config.json").read_bytes()
    decision = attempt(bundle)
    assert isinstance(decision, Decision) and not decision.wasm
    assert (bundle / "config.json").read_bytes() == raw


def test_linux_container_is_not_validated(tmp_path: Path, base_spec: dict[str, Any]) -> None:
    """Fields runwasm does not read are runc's business for a Linux container."""
    spec = mutated(base_spec, lambda s: s.update(annotations={}, mounts=5, linux="x",
                                                  process={"args": 7}, Root={}))
    bundle = write_bundle(tmp_path, spec)
    raw = (bundle / "config.json").read_bytes()
    decision = attempt(bundle)
    assert isinstance(decision, Decision) and not decision.wasm
    assert (bundle / "config.json").read_bytes() == raw


# -- annotation values of any size --------------------------------------------------------

HUGE = "9" * (1 << 20)


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("runwasm.io/engine", HUGE, "unknown engine"),
    ("runwasm.io/engine", "x" * 100000 + "\n", "unknown engine"),
    ("module.wasm.image/variant", HUGE, "expected one of compat, compat-smart"),
    ("run.oci.handler", "\0" * 5000, "contains a NUL byte"),
    ("runwasm.io/max-memory", HUGE, "expected a quantity"),
    ("runwasm.io/max-memory", "9" * 400 + "Ei", "expected a quantity"),
    ("runwasm.io/timeout", HUGE + "h", "expected a duration"),
    ("runwasm.io/timeout", "9" * 400, "expected a duration"),
    ("runwasm.io/fuel", HUGE, "expected a positive integer"),
    ("runwasm.io/fuel", "\u0661\u0662", "expected a positive integer"),  # Arabic-Indic digits
    ("runwasm.io/fuel", "99999999999999999999", "expected a positive integer"),
    ("runwasm.io/sockets", HUGE, "expected true or false"),
    ("runwasm.io/invoke", HUGE, "exports no function"),
])
def test_annotation_values_of_any_size(tmp_path: Path, base_spec: dict[str, Any],
                                       hello: bytes, key: str, value: str,
                                       fragment: str) -> None:
    spec = mutated(base_spec, lambda s: s["annotations"].update({key: value}))
    message = error_of(write_bundle(tmp_path, spec, hello))
    assert key in message and fragment in message, message[:300]
    if len(value) > 100:
        assert " characters)" in message
    assert len(message) < 300


def test_one_line_escapes_what_a_stream_cannot_take() -> None:
    line = one_line("runwasm: a\nb\rc \ud800 \udcff " + "x" * 5000)
    assert "\n" not in line and "\r" not in line and len(line) <= 1027
    assert "\\ud800" in line and "\udcff" in line  # a non-UTF-8 path byte stays a byte
    line.encode("utf-8", "surrogateescape")


# -- entrypoints that are not regular files ------------------------------------------------

def _directory(path: Path) -> None:
    path.mkdir()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _char_device(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, 0o600 | 0o020000, os.makedev(1, 5))  # like /dev/zero


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


def _loop_pair(path: Path) -> None:
    path.symlink_to("b")
    path.with_name("b").symlink_to(path.name)


def _link_to_directory(path: Path) -> None:
    path.with_name("dir").mkdir()
    path.symlink_to("dir")


def _escaping_link(path: Path) -> None:
    path.symlink_to("/etc/passwd")  # resolved inside the image, where it is missing


ENTRYPOINTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "directory": (_directory, "/app.wasm is a directory, not a regular file"),
    "FIFO": (_fifo, "/app.wasm is a FIFO, not a regular file"),
    "socket": (_socket, "/app.wasm is a socket, not a regular file"),
    "character device": (_char_device, "/app.wasm is a character device, not a regular file"),
    "symlink loop": (_loop, "too many levels of symbolic links"),
    "symlink pair loop": (_loop_pair, "too many levels of symbolic links"),
    "symlink to a directory": (_link_to_directory, "/app.wasm is a directory"),
    "symlink out of the image": (_escaping_link, "module /app.wasm not found in the image"),
}


@pytest.mark.parametrize("case", sorted(ENTRYPOINTS))
@pytest.mark.parametrize("smart", [False, True], ids=["compat", "smart"])
def test_entrypoint_not_a_regular_file(tmp_path: Path, base_spec: dict[str, Any],
                                       case: str, smart: bool) -> None:
    make, fragment = ENTRYPOINTS[case]
    annotations = {} if smart else COMPAT
    bundle = write_bundle(tmp_path, mutated(base_spec, _set("annotations", annotations)))
    make(bundle / "rootfs" / "app.wasm")
    result = attempt(bundle, SMART if smart else CONFIG)
    if smart and "not found" in fragment:
        assert isinstance(result, Decision) and not result.wasm  # left to runc
        return
    assert not isinstance(result, Decision), result.reason
    assert fragment in result.message, result.message


# -- container ids ----------------------------------------------------------------------------

def test_id_in_use_is_refused_before_anything_is_written(
        tmp_path: Path, base_spec: dict[str, Any], hello: bytes) -> None:
    root = tmp_path / "state"
    (root / "taken").mkdir(parents=True)
    bundle = write_bundle(tmp_path / "b", base_spec, hello)
    assert error_of(bundle, root=str(root), container_id="taken") == (
        "container with given ID already exists")


@pytest.mark.parametrize("container_id", ["a/b", "..", ".", "x y", "é", "a\0b", "/"])
def test_invalid_id_is_refused(tmp_path: Path, base_spec: dict[str, Any], hello: bytes,
                               container_id: str) -> None:
    bundle = write_bundle(tmp_path, base_spec, hello)
    message = error_of(bundle, root=str(tmp_path / "state"), container_id=container_id)
    assert message.startswith("invalid container ID format: ")


# -- sizes: what would take the handler long, or the kernel would refuse ----------------------

def test_long_paths_are_refused_at_once(tmp_path: Path, base_spec: dict[str, Any],
                                        hello: bytes) -> None:
    """A path of many parts used to cost quadratic time to resolve (minutes for 80 kB)."""
    long_path = "/a" * 40000
    spec = mutated(base_spec, _set("process.args", [long_path]))
    assert "file name too long" in error_of(write_bundle(tmp_path / "args", spec, hello))
    spec = mutated(base_spec, _set("process.cwd", long_path))
    assert "file name too long" in error_of(write_bundle(tmp_path / "smart", dict(
        spec, annotations={}), hello), SMART)
    spec = mutated(base_spec, lambda s: s["mounts"].append(
        {"destination": long_path, "type": "tmpfs", "source": "tmpfs"}))
    assert error_of(write_bundle(tmp_path / "mount", spec, hello)) == (
        f"prepare engine view in {tmp_path}/mount: file name too long")


def test_arguments_beyond_what_exec_takes(tmp_path: Path, base_spec: dict[str, Any],
                                          hello: bytes) -> None:
    spec = mutated(base_spec, _set("process.args", ["/app.wasm", *["x" * 1000] * 200]))
    assert "process.args take " in error_of(write_bundle(tmp_path / "a", spec, hello))
    spec = mutated(base_spec, lambda s: s["process"]["env"].append("BIG=" + "x" * 200000))
    assert "process.env[2] is 200005 bytes; an environment entry holds at most 131072" in (
        error_of(write_bundle(tmp_path / "e", spec, hello)))
    # just below the limit is fine
    spec = mutated(base_spec, _set("process.args", ["/app.wasm", *["x" * 1000] * 100]))
    assert isinstance(attempt(write_bundle(tmp_path / "ok", spec, hello)), Decision)


def test_module_claiming_too_many_exports(tmp_path: Path, base_spec: dict[str, Any]) -> None:
    body = bytes([0xC0, 0x9A, 0x0C])  # 200000, then nothing
    module = b"\0asm\x01\x00\x00\x00" + b"\x07" + bytes([len(body)]) + body
    assert error_of(write_bundle(tmp_path, base_spec, module)) == (
        "module /app.wasm is corrupt: 200000 exports, more than engines allow (100000)")


def test_module_of_many_sections(tmp_path: Path, base_spec: dict[str, Any]) -> None:
    custom = b"\x00\x01\x00"  # an empty custom section named ""
    module = b"\0asm\x01\x00\x00\x00" + custom * 100001
    assert error_of(write_bundle(tmp_path, base_spec, module)) == (
        "module /app.wasm is corrupt: more than 100000 sections")


# -- what prepare writes must be the bundle's own ------------------------------------------

def _state_file(bundle: Path) -> None:
    (bundle / ".runwasm").write_text("x")


def _state_link(bundle: Path) -> None:
    (bundle.parent / "elsewhere").mkdir()
    (bundle / ".runwasm").symlink_to(bundle.parent / "elsewhere")


def _skeleton_link(bundle: Path) -> None:
    (bundle / ".runwasm").mkdir()
    (bundle / ".runwasm" / "root").symlink_to(bundle.parent)


def _config_link(bundle: Path) -> None:
    (bundle / "config.json").rename(bundle / "real.json")
    (bundle / "config.json").symlink_to("real.json")


@pytest.mark.parametrize(("make", "fragment"), [
    (_state_file, "/.runwasm is a regular file: refused (runwasm writes there)"),
    (_state_link, "/.runwasm is a symbolic link: refused (runwasm writes there)"),
    (_skeleton_link, "/.runwasm/root is a symbolic link: refused (runwasm writes there)"),
    (_config_link, "/config.json is a symbolic link: refused (runwasm writes there)"),
], ids=["state a file", "state a symlink", "skeleton a symlink", "config a symlink"])
def test_written_paths_are_the_bundle_s_own(tmp_path: Path, base_spec: dict[str, Any],
                                            hello: bytes, make: Callable[[Path], None],
                                            fragment: str) -> None:
    bundle = write_bundle(tmp_path / "b", base_spec, hello)
    make(bundle)
    assert error_of(bundle).endswith(fragment)
    assert not (tmp_path / "elsewhere").exists() or not list((tmp_path / "elsewhere").iterdir())


def test_a_full_cri_o_like_spec_passes_the_wasm_check() -> None:
    """Every field CRI-O, podman and containerd write, with the types they write."""
    from runwasm.handler import spec_schema

    ids = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False, "consoleSize": {"height": 24, "width": 80},
            "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [10, 1000]},
            "args": ["/app.wasm"], "env": ["PATH=/bin", "HOSTNAME=pod"], "cwd": "/",
            "capabilities": {k: ["CAP_CHOWN", "CAP_KILL"] for k in
                             ("bounding", "effective", "inheritable", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}],
            "noNewPrivileges": True, "apparmorProfile": "crio-default", "oomScoreAdj": -997,
            "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
        },
        "root": {"path": "/var/lib/containers/storage/overlay/x/merged", "readonly": True},
        "hostname": "pod", "domainname": "",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                    "options": ["nosuid", "noexec", "nodev"]},
                   {"destination": "/data", "type": "bind", "source": "/srv/data",
                    "options": ["rbind", "rw"], "uidMappings": ids, "gidMappings": ids}],
        "hooks": {"prestart": [{"path": "/usr/bin/hook", "args": ["hook", "x"], "env": ["A=1"],
                                "timeout": 10}], "poststop": []},
        "annotations": {"io.kubernetes.cri-o.ContainerType": "container", **COMPAT},
        "linux": {
            "uidMappings": ids, "gidMappings": ids, "sysctl": {"net.ipv4.ip_forward": "1"},
            "resources": {
                "devices": [{"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 3,
                             "access": "rwm"}],
                "memory": {"limit": 209715200, "swap": 209715200, "swappiness": 0,
                           "disableOOMKiller": False},
                "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0-1",
                        "mems": "0"},
                "pids": {"limit": 1024},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
                "blockIO": {"weight": 100, "throttleReadBpsDevice": [
                    {"major": 8, "minor": 0, "rate": 1048576}]},
                "unified": {"memory.high": "max"},
            },
            "cgroupsPath": "kubepods-besteffort.slice:crio:abc",
            "namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"},
                           {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                         "fileMode": 438, "uid": 0, "gid": 0}],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                        "architectures": ["SCMP_ARCH_X86_64"], "flags": [],
                        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                      "args": [{"index": 0, "value": 8, "valueTwo": 0,
                                                "op": "SCMP_CMP_EQ"}]}]},
            "rootfsPropagation": "rprivate", "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"], "mountLabel": "system_u:object_r:container_file_t",
        },
    }
    spec_schema.check(spec, "config.json")


UNREADABLE_PROBE = """
import sys
from runwasm.config import NodeConfig
from runwasm.errors import RunwasmError
from runwasm.handler import create
from runwasm.handler.log import Log
try:
    create.prepare(sys.argv[1], NodeConfig(path="/nonexistent", cache_dir="",
                                           detection=sys.argv[2]), Log())
    print("accepted")
except RunwasmError as e:
    print(e.message)
"""


@pytest.mark.parametrize("detection", ["annotations", "smart"])
def test_entrypoint_unreadable(base_spec: dict[str, Any], hello: bytes,
                               detection: str) -> None:
    """Root reads any file: the handler runs as nobody here to meet a permission error."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        annotations = COMPAT if detection == "annotations" else {}
        bundle = write_bundle(Path(directory), mutated(base_spec, _set("annotations",
                                                                       annotations)), hello)
        (bundle / "rootfs" / "app.wasm").chmod(0o000)
        repo = str(Path(__file__).resolve().parents[2])

        def as_nobody() -> None:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)

        # the system interpreter: a pyenv one may not be reachable by nobody (the handler
        # needs only the standard library)
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        result = subprocess.run([python, "-I", "-c", f"import sys; sys.path.insert("
                                 f"0, {repo!r})\n" + UNREADABLE_PROBE, str(bundle), detection],
                                capture_output=True, text=True, timeout=30,
                                preexec_fn=as_nobody, check=False)
    assert result.returncode == 0, result.stderr[-500:]
    want = {"annotations": "module.wasm.image/variant=compat: read module /app.wasm: "
                           "Permission denied",
            "smart": "read entrypoint /app.wasm: Permission denied"}[detection]
    assert result.stdout.strip() == want

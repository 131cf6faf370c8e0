"""A CLI engine installed anywhere runs in the container: WasmEdge from ../shared/wasmedge
unpacked as its installer lays it out (`~/.wasmedge`, `-p PREFIX`), with plugins of its
own, outside every directory the engine view binds anyway. The launcher sees the binary,
its libraries and plugins read-only; the guest sees none of it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from integration_support import WASMEDGE_KITS, Runtime, install_wasmedge, wasm_bundle

from devkit import bundles

pytestmark = pytest.mark.skipif(not WASMEDGE_KITS or os.uname().machine != "x86_64",
                                reason="no WasmEdge kit in ../shared/wasmedge (or not x86_64)")

PLUGIN = """#include <stdio.h>
int dep(void);
__attribute__((constructor)) static void loaded(void) {
    fprintf(stderr, "plugin %s loaded (dep %d)\\n", NAME, dep());
}
"""


def plugin(directory: Path, name: str, deps: Path) -> None:
    """A shared object that says when the engine loads it, needing a library of its own
    from a directory only its RUNPATH names."""
    deps.mkdir(parents=True, exist_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    (deps / "dep.c").write_text("int dep(void) { return 7; }\n")
    subprocess.run(["clang", "-shared", "-fPIC", "-o", str(deps / "libdep.so"),
                    str(deps / "dep.c")], check=True)
    source = directory / f"{name}.c"
    source.write_text(PLUGIN)
    subprocess.run(["clang", "-shared", "-fPIC", f'-DNAME="{name}"', "-o",
                    str(directory / f"lib{name}.so"), str(source), f"-L{deps}", "-ldep",
                    f"-Wl,-rpath,{deps}"], check=True)
    source.unlink()


def node(tmp_path: Path, engines: str = "", **env: str) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[cache]\ndir = ""\n{engines}')
    return {**os.environ, "RUNWASM_CONFIG": str(config), **env}


def run(runtime: Runtime, bundle: Path, env: dict[str, str]
        ) -> subprocess.CompletedProcess[str]:
    return runtime.runwasm("run", "--bundle", str(bundle), runtime.new_id(), env=env)


def engine_bundle(path: Path, module: Path, args: list[str]) -> Path:
    return wasm_bundle(path, {args[0]: module}, args,
                       annotations={"runwasm.io/engine": "wasmedge"})


def test_home_prefix_found_unconfigured(runtime: Runtime, modules: dict[str, Path],
                                        tmp_path: Path) -> None:
    """~/.wasmedge, as the installer leaves it without -p: found with no config."""
    home = tmp_path / "home"
    binary = install_wasmedge(home / ".wasmedge")
    env = node(tmp_path, HOME=str(home), PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    bundle = engine_bundle(tmp_path / "b", modules["hello"], ["/hello.wasm", "x"])
    result = run(runtime, bundle, env)
    assert result.returncode == 0, result.stderr
    assert "Hello from WebAssembly!" in result.stdout
    # The launcher's view had the prefix's bin/ and lib/, read-only.
    mounts = {m["destination"]: m for m in _spec(bundle)["mounts"]}
    for directory in (binary.parent, home / ".wasmedge" / "lib"):
        assert "ro" in mounts[str(directory)]["options"], sorted(mounts)


def test_guest_cannot_see_the_engine(runtime: Runtime, modules: dict[str, Path],
                                     tmp_path: Path) -> None:
    binary = install_wasmedge(tmp_path / "opt" / "wasmedge")
    env = node(tmp_path, f'[engines.wasmedge]\npath = "{binary}"\n')
    library = binary.parent.parent / "lib" / "libwasmedge.so.0"
    for n, args in enumerate([["read", str(library)], ["read", str(binary)],
                              ["read", "/../../../../" + str(library)],
                              ["ls", str(library.parent)], ["ls", "/"]]):
        result = run(runtime, engine_bundle(tmp_path / f"b{n}", modules["tool"],
                                            ["/tool.wasm", *args]), env)
        if args == ["ls", "/"]:
            assert set(result.stdout.split()) - {".", ".."} == {"tool.wasm"}, result
        else:
            assert result.returncode == 1, (args, result.stdout, result.stderr)


def test_plugins_and_their_libraries(runtime: Runtime, modules: dict[str, Path],
                                     tmp_path: Path) -> None:
    """PREFIX/plugin (the installer's place for plugins outside /usr) and
    WASMEDGE_PLUGIN_PATH from runwasm's environment: both load in the container, with a
    library each needs from elsewhere."""
    prefix = tmp_path / "prefix"
    binary = install_wasmedge(prefix)
    plugin(prefix / "plugin" / "sub", "probe", tmp_path / "deps1")
    plugin(tmp_path / "extra", "extra", tmp_path / "deps2")
    env = node(tmp_path, f'[engines.wasmedge]\npath = "{binary}"\n',
               WASMEDGE_PLUGIN_PATH=str(tmp_path / "extra"))
    result = run(runtime, engine_bundle(tmp_path / "b", modules["hello"], ["/hello.wasm"]),
                 env)
    assert result.returncode == 0, result.stderr
    assert "plugin probe loaded (dep 7)" in result.stderr
    assert "plugin extra loaded (dep 7)" in result.stderr


def test_missing_library_fails_create(runtime: Runtime, modules: dict[str, Path],
                                      tmp_path: Path) -> None:
    binary = install_wasmedge(tmp_path / "broken")
    for library in (tmp_path / "broken" / "lib").iterdir():
        library.unlink()
    env = node(tmp_path, f'[engines.wasmedge]\npath = "{binary}"\n')
    bundle = engine_bundle(tmp_path / "b", modules["hello"], ["/hello.wasm"])
    result = run(runtime, bundle, env)
    assert result.returncode == 1
    assert result.stderr == (f"runwasm: engine wasmedge is not installed: {binary} needs "
                             "libwasmedge.so.0, which the dynamic loader cannot find\n")
    assert runtime.listed() == []


def _spec(bundle: Path) -> dict[str, object]:
    import json

    spec: dict[str, object] = json.loads((bundle / "config.json").read_text())
    return spec



ENV_C = r"""#include <stdio.h>
extern char **environ;
int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv=<%s>\n", argv[i]);
    for (char **e = environ; *e; e++) printf("env=<%s>\n", *e);
    return 0;
}
"""
ARGS = ["", "-x", "--", "--env", "--dir", "a b", "é", "x=y", "\t"]
ENV = ["A=1", "EMPTY=", "EQ=x=y", "DASH=-x", "OPT=--env", "SPACE=a b", "UTF8=é",
       "LINES=one\ntwo", "A=again"]


def guest_view(runtime: Runtime, tmp_path: Path, arg0: str) -> tuple[
        list[str], list[str], list[str]]:
    """(argv, environ) the guest saw for process.args [arg0, *ARGS] and process.env with
    ENV, and that process.env."""
    binary = install_wasmedge(tmp_path / "prefix")
    source = tmp_path / "env.c"
    source.write_text(ENV_C)
    module = bundles.c_module(source, tmp_path / "env.wasm")
    env = node(tmp_path, f'[engines.wasmedge]\npath = "{binary}"\n')
    bundle = wasm_bundle(tmp_path / "b", {arg0: module}, [arg0, *ARGS],
                         annotations={"runwasm.io/engine": "wasmedge"}, env=ENV)
    process = _spec(bundle)["process"]
    assert isinstance(process, dict)
    result = run(runtime, bundle, env)
    assert result.returncode == 0, result.stderr
    argv = re.findall(r"^argv=<(.*?)>$", result.stdout, re.M | re.S)
    environ = re.findall(r"^env=<(.*?)>$", result.stdout, re.M | re.S)
    return argv, environ, list(process["env"])


@pytest.mark.parametrize(("arg0", "shown"), [("/bin/app.wasm", "app.wasm"),
                                             ("/bin/app", "app.wasm"),
                                             ("/srv/server.bin", "server.bin.wasm")])
def test_wasmedge_argv(runtime: Runtime, tmp_path: Path, arg0: str, shown: str) -> None:
    """argv[1:] exactly process.args[1:]; argv[0] as close to process.args[0] as WasmEdge
    allows: its last component, ending in .wasm."""
    argv, _, _ = guest_view(runtime, tmp_path, arg0)
    assert argv == [shown, *ARGS]


def test_wasmedge_env(runtime: Runtime, tmp_path: Path) -> None:
    """The guest's environment is exactly process.env, in order (no HOME from runc, no
    LC_CTYPE from Python); a name given twice keeps its last value in its first place, as
    runc gives any container."""
    _, environ, given = guest_view(runtime, tmp_path, "/bin/app.wasm")
    merged: dict[str, str] = {}
    for entry in given:
        name, _, value = entry.partition("=")
        merged[name] = value
    assert environ == [f"{name}={value}" for name, value in merged.items()]
    assert "A=again" in environ and "A=1" not in environ

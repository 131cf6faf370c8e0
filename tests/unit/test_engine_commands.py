"""The exact command lines of the CLI engines, against their documented syntax."""

from __future__ import annotations

import pytest

from runwasm.engines import wasmedge as wasmedge_module
from runwasm.engines.wasmedge import WasmEdge
from runwasm.engines.wasmer import Wasmer
from runwasm.engines.wasmtime_cli import WasmtimeCli
from runwasm.plan import Limits, Plan

ENV = [("GREETING", "hi there"), ("EMPTY", "")]


def plan(**kwargs: object) -> Plan:
    values: dict[str, object] = dict(
        engine="x", module="/.app/bin/app.wasm", kind="module",
        args=["app.wasm", "--flag", "two words"], cwd="/.app/work", readonly=False,
        executable="/opt/engine/bin/tool")
    values.update(kwargs)
    return Plan(**values)  # type: ignore[arg-type]


def test_wasmtime_cli_plain() -> None:
    assert WasmtimeCli().command(plan(), ENV) == [
        "/opt/engine/bin/tool", "run", "-C", "cache=n", "--dir", "/.app::/",
        "--dir", "/.app/work::.",
        "--env=GREETING=hi there", "--env=EMPTY=",
        "--argv0=app.wasm", "--", "/.app/bin/app.wasm", "--flag", "two words"]


def test_wasmtime_cli_limits_sockets_and_options() -> None:
    argv = WasmtimeCli().command(
        plan(limits=Limits(max_memory=64 << 20, timeout=3.0, fuel=5000), sockets=True,
             options=["-O", "opt-level=0"]), [])
    assert argv == [
        "/opt/engine/bin/tool", "run", "-C", "cache=n", "--dir", "/.app::/",
        "--dir", "/.app/work::.",
        "-W", f"max-memory-size={64 << 20},trap-on-grow-failure=y", "-W", "fuel=5000",
        "-S", "inherit-network=y,tcp=y,udp=y,allow-ip-name-lookup=y",
        "-O", "opt-level=0", "--argv0=app.wasm", "--", "/.app/bin/app.wasm", "--flag",
        "two words"]
    # The timeout is the launcher's, uniform across engines: no engine flag for it.
    assert not any("timeout" in a for a in argv)


def test_values_starting_with_a_dash_stay_values() -> None:
    env = [("-x", "--flag")]
    assert "--env=-x=--flag" in WasmtimeCli().command(plan(args=["-a"]), env)
    assert "--argv0=-a" in WasmtimeCli().command(plan(args=["-a"]), env)
    assert "--env=-x=--flag" in Wasmer().command(plan(), env)
    assert "--env=-x=--flag" in WasmEdge().command(plan(), env)


@pytest.fixture
def links(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The launcher-side links the engine view made: {link: target}, none to start with."""
    made: dict[str, str] = {}

    def readlink(path: str) -> str:
        if path not in made:
            raise FileNotFoundError(path)
        return made[path]

    monkeypatch.setattr(wasmedge_module.os, "readlink", readlink)
    return made


def test_wasmedge(links: dict[str, str]) -> None:
    # The module runs through the link the engine view made for argv[0] (app.wasm).
    links["/.runwasm/name/app.wasm"] = "/.app/bin/app.wasm"
    assert WasmEdge().command(plan(limits=Limits(max_memory=(1 << 20) + 1)), ENV) == [
        "/opt/engine/bin/tool", "--dir", "/:/.app", "--dir", ".:/.app/work",
        "--env=GREETING=hi there", "--env=EMPTY=",
        "--memory-page-limit", "16", "--run-mode", "interpreter", "--log-level", "error",
        "--", "/.runwasm/name/app.wasm", "--flag", "two words"]


def test_wasmedge_exec_module_without_its_own_link(links: dict[str, str]) -> None:
    # An exec'd module has no link of its own, and one of the same name is another's.
    assert WasmEdge().command(plan(), [])[-3] == "/.app/bin/app.wasm"
    links["/.runwasm/name/app.wasm"] = "/.app/app.wasm"  # the container's own app.wasm
    assert WasmEdge().command(plan(), [])[-3] == "/.app/bin/app.wasm"


def test_wasmedge_runs_aot_code_only_from_the_cache(links: dict[str, str]) -> None:
    links["/.runwasm/name/srv.wasm"] = "/.runwasm/module.cwasm"
    argv = WasmEdge().command(plan(artifact="/.runwasm/module.cwasm", args=["/x/srv"]), [])
    assert argv[argv.index("--run-mode") + 1] == "aot"
    assert argv[-1] == "/.runwasm/name/srv.wasm"
    argv = WasmEdge().command(plan(args=[]), [])
    assert argv[argv.index("--run-mode") + 1] == "interpreter"
    assert argv[-1] == "/.app/bin/app.wasm"  # no argv[0] to name it after


@pytest.mark.parametrize(("arg0", "name"), [
    ("/hello.wasm", "hello.wasm"), ("hello.wasm", "hello.wasm"), ("app", "app.wasm"),
    ("/usr/bin/app.bin", "app.bin.wasm"), ("a.b.wasm", "a.b.wasm"), (".wasm", ".wasm.wasm"),
    ("dir/", ""), ("", ""), ("x" * 250, "x" * 250 + ".wasm"), ("x" * 251, ""),
    ("nul\0.wasm", "")])
def test_wasmedge_module_name(arg0: str, name: str) -> None:
    assert WasmEdge().module_name([arg0, "more"]) == name


def test_wasmedge_tiny_memory_limit_is_one_page() -> None:
    argv = WasmEdge().command(plan(limits=Limits(max_memory=100)), [])
    assert argv[argv.index("--memory-page-limit") + 1] == "1"


def test_wasmer_cli() -> None:
    assert Wasmer().command(plan(sockets=True, options=["--llvm"]), ENV) == [
        "/opt/engine/bin/tool", "run", "--mapdir", "/:/.app", "--mapdir", ".:/.app/work",
        "--env=GREETING=hi there", "--env=EMPTY=", "--net", "--llvm",
        "/.app/bin/app.wasm", "--", "--flag", "two words"]


def test_capabilities_are_declared() -> None:
    from runwasm.engines.base import ALL_CAPABILITIES

    for adapter in (WasmtimeCli, WasmEdge, Wasmer):
        assert adapter.capabilities <= set(ALL_CAPABILITIES)
        assert "wasi-p1" in adapter.capabilities
    assert "components" in WasmtimeCli.capabilities
    assert "fuel" not in WasmEdge.capabilities
    # The package has no sockets; only the package uses runwasm's cache.
    assert Wasmer.python_capabilities - Wasmer.capabilities == {"precompile"}
    assert Wasmer.capabilities - Wasmer.python_capabilities == {"sockets"}

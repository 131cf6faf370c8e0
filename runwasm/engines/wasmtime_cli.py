"""Wasmtime's `wasmtime` executable (`wasmtime run`), as a child of the launcher.

Syntax (wasmtime 14+): `--dir HOST::GUEST`, `--env=NAME=VALUE`, `--argv0=NAME` (the
`=` form, so a value starting with `-` is not taken for an option),
`-W max-memory-size=N,trap-on-grow-failure=y`, `-W fuel=N`, `-S inherit-network=y`,
then `--`, the module and its arguments. The guest's exit code is wasmtime's; a trap
exits 1 with a multi-line report, which the launcher reads to exit 134 (as SIGABRT
would) with a one-line summary, like every engine.
"""

from __future__ import annotations

from runwasm.engines import imports as engine_imports
from runwasm.engines.base import (
    COMPONENTS,
    FUEL,
    MAX_MEMORY,
    PRECOMPILE,
    SOCKETS,
    TIMEOUT,
    WASI_P1,
    EngineError,
    Installation,
    build_stamp,
)
from runwasm.engines.child import ChildProcessEngine
from runwasm.plan import APP_ROOT, Plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runwasm.plan import Limits


class WasmtimeCli(ChildProcessEngine):
    name = "wasmtime-cli"
    description = "Wasmtime's command-line runtime (wasmtime run)"
    executable_name = "wasmtime"
    capabilities = frozenset({WASI_P1, COMPONENTS, SOCKETS, MAX_MEMORY, TIMEOUT, FUEL,
                              PRECOMPILE})
    imports = engine_imports.WASMTIME_CLI
    trap_markers = ("error while executing at wasm backtrace", "wasm trap:")
    fuel_markers = ("all fuel consumed",)
    memory_markers = ("forcing trap when growing memory", "forcing a memory growth failure")

    def cache_identity(self, installation: Installation) -> str:
        return "wasmtime-cli " + build_stamp(installation.executable, installation.executable)

    def codegen_settings(self, limits: Limits) -> dict[str, Any]:
        return {"consume_fuel": limits.fuel is not None}

    def precompile(self, module: str, out: str, codegen: dict[str, Any],
                   installation: Installation) -> None:
        import subprocess

        argv = [installation.executable, "compile", "-C", "cache=n"]
        if codegen.get("consume_fuel"):
            argv += ["-W", "fuel=1"]  # compiles fuel accounting in; the amount is run-time
        result = subprocess.run([*argv, "-o", out, module], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["wasmtime compile failed"]
            raise EngineError(f"cannot compile: {lines[-1].strip()}")

    def command(self, plan: Plan, env: list[tuple[str, str]]) -> list[str]:
        # -C cache=n: never let an engine keep a writable code cache (runwasm's own
        # root-owned cache is the only place compiled code may come from).
        argv = [plan.executable, "run", "-C", "cache=n", "--dir", f"{APP_ROOT}::/",
                "--dir", f"{plan.cwd}::."]
        # `--opt=value` throughout: a value starting with '-' stays a value.
        argv += [f"--env={key}={value}" for key, value in env]
        if plan.limits.max_memory is not None:
            argv += ["-W", f"max-memory-size={plan.limits.max_memory},trap-on-grow-failure=y"]
        if plan.limits.fuel is not None:
            argv += ["-W", f"fuel={plan.limits.fuel}"]
        if plan.sockets:
            argv += ["-S", "inherit-network=y,tcp=y,udp=y,allow-ip-name-lookup=y"]
        argv += plan.options
        if plan.args:
            argv.append(f"--argv0={plan.args[0]}")
        if plan.artifact:  # only ever runwasm's cache, or an image the node allows
            return [*argv, "--allow-precompiled", "--", plan.artifact, *plan.args[1:]]
        return [*argv, "--", plan.module, *plan.args[1:]]


ADAPTER = WasmtimeCli

"""Wasmtime's `wasmtime` executable (`wasmtime run`), as a child of the launcher.

Syntax (wasmtime 14+): `--dir HOST::GUEST`, `--env NAME=VALUE`, `--argv0 NAME`,
`-W max-memory-size=N,trap-on-grow-failure=y`, `-W fuel=N`, `-S inherit-network=y`,
then `--`, the module and its arguments. The guest's exit code is wasmtime's; a trap
exits 1 with a multi-line report, which the launcher reads to exit 134 (as SIGABRT
would) with a one-line summary, like every engine.
"""

from __future__ import annotations

from runwasm.engines.base import (
    COMPONENTS,
    FUEL,
    MAX_MEMORY,
    PRECOMPILE,
    SOCKETS,
    TIMEOUT,
    WASI_P1,
)
from runwasm.engines.child import ChildProcessEngine
from runwasm.plan import APP_ROOT, Plan


class WasmtimeCli(ChildProcessEngine):
    name = "wasmtime-cli"
    description = "Wasmtime's command-line runtime (wasmtime run)"
    executable_name = "wasmtime"
    capabilities = frozenset({WASI_P1, COMPONENTS, SOCKETS, MAX_MEMORY, TIMEOUT, FUEL,
                              PRECOMPILE})
    trap_markers = ("error while executing at wasm backtrace", "wasm trap:")
    fuel_markers = ("all fuel consumed",)
    memory_markers = ("forcing trap when growing memory", "forcing a memory growth failure")

    def command(self, plan: Plan, env: list[tuple[str, str]]) -> list[str]:
        # -C cache=n: never let an engine keep a writable code cache (runwasm's own
        # root-owned cache is the only place compiled code may come from).
        argv = [plan.executable, "run", "-C", "cache=n", "--dir", f"{APP_ROOT}::/",
                "--dir", f"{plan.cwd}::."]
        for key, value in env:
            argv += ["--env", f"{key}={value}"]
        if plan.limits.max_memory is not None:
            argv += ["-W", f"max-memory-size={plan.limits.max_memory},trap-on-grow-failure=y"]
        if plan.limits.fuel is not None:
            argv += ["-W", f"fuel={plan.limits.fuel}"]
        if plan.sockets:
            argv += ["-S", "inherit-network=y,tcp=y,udp=y,allow-ip-name-lookup=y"]
        argv += plan.options
        if plan.args:
            argv += ["--argv0", plan.args[0]]
        return [*argv, "--", plan.module, *plan.args[1:]]


ADAPTER = WasmtimeCli

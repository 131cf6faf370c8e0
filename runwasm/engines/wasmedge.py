"""WasmEdge's `wasmedge` executable, as a child of the launcher (no maintained Python
binding exists).

Syntax (`wasmedge [OPTIONS] [--] WASM_OR_SO [ARG ...]`): `--dir GUEST:HOST`,
`--env NAME=VALUE`, `--memory-page-limit PAGES` (64 KiB pages). WasmEdge passes the
module path as the guest's argv[0] (it has no option to set it) and exits with the
guest's exit code. Its sockets extension is built in. Wall-clock timeouts are the
launcher's (uniform across engines), not `--time-limit`.
"""

from __future__ import annotations

from runwasm.engines.base import MAX_MEMORY, PRECOMPILE, SOCKETS, TIMEOUT, WASI_P1
from runwasm.engines.child import ChildProcessEngine
from runwasm.plan import APP_ROOT, Plan

_PAGE = 65536


class WasmEdge(ChildProcessEngine):
    name = "wasmedge"
    description = "WasmEdge's command-line runtime (wasmedge)"
    executable_name = "wasmedge"
    default_locations = ("~/.wasmedge/bin/wasmedge",)  # WasmEdge's installer, without -p
    capabilities = frozenset({WASI_P1, SOCKETS, MAX_MEMORY, TIMEOUT, PRECOMPILE})

    def command(self, plan: Plan, env: list[tuple[str, str]]) -> list[str]:
        argv = [plan.executable, "--dir", f"/:{APP_ROOT}", "--dir", f".:{plan.cwd}"]
        for key, value in env:
            argv += ["--env", f"{key}={value}"]
        if plan.limits.max_memory is not None:
            argv += ["--memory-page-limit", str(max(1, plan.limits.max_memory // _PAGE))]
        argv += plan.options
        return [*argv, "--", plan.module, *plan.args[1:]]


ADAPTER = WasmEdge

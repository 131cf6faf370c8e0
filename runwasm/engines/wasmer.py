"""Wasmer: the `wasmer` Python package in-process where it imports, else the `wasmer`
executable as a child of the launcher.

The Python package has native wheels only up to Python 3.10, so the node config names
an interpreter that has it (`[engines.wasmer] python = ".../bin/python3.10"`); the
launcher then runs on that interpreter. Without one, `wasmer run` is used:
`--mapdir GUEST:HOST`, `--env NAME=VALUE`, `--net` for sockets, then the module, `--`
and its arguments.

Neither lets runwasm interrupt running wasm: on SIGTERM the launcher ends the guest
after its grace period (in-process) or signals the child (CLI).
"""

from __future__ import annotations

import os
import sys

from runwasm.engines.base import (
    EXIT_TRAP,
    PRECOMPILE,
    SOCKETS,
    TIMEOUT,
    WASI_P1,
    EngineError,
    EngineSettings,
    Installation,
    missing,
)
from runwasm.engines.child import ChildProcessEngine
from runwasm.plan import APP_ROOT, Plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_EXIT_PREFIX = "WASI exited with code: "


class Wasmer(ChildProcessEngine):
    name = "wasmer"
    description = "Wasmer: the wasmer Python package (Python <= 3.10), else wasmer run"
    executable_name = "wasmer"
    capabilities = frozenset({WASI_P1, SOCKETS, TIMEOUT, PRECOMPILE})
    python_capabilities = frozenset({WASI_P1, TIMEOUT, PRECOMPILE})

    # -- host side ---------------------------------------------------------------------

    def locate(self, settings: EngineSettings) -> Installation:
        if settings.python:
            return self._locate_python(settings.python)
        return super().locate(settings)

    def supported(self, installation: Installation) -> frozenset[str]:
        return self.python_capabilities if installation.interpreter else self.capabilities

    def _locate_python(self, python: str) -> Installation:
        if not (os.path.isfile(python) and os.access(python, os.X_OK)):
            raise missing(self.name, f"python {python} (engines.wasmer.python) not found")
        prefix = os.path.dirname(os.path.dirname(os.path.abspath(python)))
        lib = os.path.join(prefix, "lib")
        sites = [os.path.join(lib, d, "site-packages") for d in
                 (os.listdir(lib) if os.path.isdir(lib) else []) if d.startswith("python3")]
        site = next((s for s in sites if os.path.isdir(os.path.join(s, "wasmer"))), "")
        if not site:
            raise missing(self.name, f"no wasmer package in the site-packages of {python}")
        version = ""
        for entry in os.listdir(site):
            if entry.startswith("wasmer-") and entry.endswith(".dist-info"):
                version = entry[len("wasmer-"):-len(".dist-info")]
        real = os.path.realpath(python)
        base = os.path.dirname(os.path.dirname(real))
        return Installation(version=version, interpreter=real, import_paths=(site,),
                            host_paths=(base, site))

    def version(self, settings: EngineSettings) -> str:
        if settings.python:
            return self._locate_python(settings.python).version
        return super().version(settings)

    # -- container side ----------------------------------------------------------------

    def command(self, plan: Plan, env: list[tuple[str, str]]) -> list[str]:
        argv = [plan.executable, "run", "--mapdir", f"/:{APP_ROOT}",
                "--mapdir", f".:{plan.cwd}"]
        for key, value in env:
            argv += ["--env", f"{key}={value}"]
        if plan.sockets:
            argv.append("--net")
        argv += plan.options
        return [*argv, plan.module, "--", *plan.args[1:]]

    def run(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        if plan.executable:
            return super().run(plan, env)
        return self._run_in_process(plan, env)

    def _run_in_process(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        try:
            import wasmer
            from wasmer import wasi
            from wasmer_compiler_cranelift import Compiler
        except ImportError as e:
            raise EngineError(f"the wasmer package does not import here: {e}") from None
        store = wasmer.Store(wasmer.engine.Universal(Compiler))
        try:
            with open(plan.module, "rb") as f:
                module = wasmer.Module(store, f.read())
            version = wasi.get_version(module, strict=True)
        except (RuntimeError, ValueError, TypeError, OSError) as e:
            raise EngineError(f"cannot compile {plan.module[len(APP_ROOT):]}: {e}") from None
        builder: Any = wasi.StateBuilder(plan.args[0] if plan.args else plan.module)
        builder = builder.arguments(plan.args[1:]).environments(dict(env))
        builder = builder.map_directory("/", APP_ROOT).map_directory(".", plan.cwd)
        imports = builder.finalize().generate_import_object(store, version)
        try:
            instance = wasmer.Instance(module, imports)
            instance.exports._start()
        except RuntimeError as e:
            text = str(e)
            if _EXIT_PREFIX in text:
                return int(text.rsplit(_EXIT_PREFIX, 1)[1].split()[0])
            sys.stderr.write(f"runwasm: guest trapped: {text.strip().splitlines()[0]}\n")
            return EXIT_TRAP
        return 0

    def interrupt(self) -> None:
        super().interrupt()  # a CLI child gets SIGTERM; in-process wasm cannot be stopped


ADAPTER = Wasmer

"""Wasmtime in-process, through the `wasmtime` Python package (the default engine).

Signals and timeouts: a Python signal handler never runs while the main thread is
inside wasm, so the launcher's helper thread calls `interrupt()`, which bumps the
engine's epoch; the guest, run with an epoch deadline of one tick, traps at its next
loop back-edge or call.

The launcher runs this module without `os` (launcher/main.py says why): container-side
code uses `posix`, and the host-side methods import `os` themselves.
"""

from __future__ import annotations

import posix
import sys

from runwasm.engines import imports as engine_imports
from runwasm.engines.base import (
    COMPONENTS,
    EXIT_FUEL,
    EXIT_MEMORY,
    EXIT_TRAP,
    FUEL,
    INVOKE,
    MAX_MEMORY,
    PRECOMPILE,
    TIMEOUT,
    TOKIO_ONE_WORKER,
    WASI_P1,
    Engine,
    EngineError,
    EngineSettings,
    Installation,
    build_stamp,
    dist_version,
    missing,
)
from runwasm.plan import APP_ROOT, MODULE, PRECOMPILED, Plan, guest_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runwasm.plan import Limits

_WASI_RUN = "wasi:cli/run@0.2"  # matched as a prefix: any 0.2.x


class WasmtimeInProcess(Engine):
    name = "wasmtime"
    description = "Wasmtime in-process (the wasmtime Python package)"
    capabilities = frozenset({WASI_P1, COMPONENTS, MAX_MEMORY, TIMEOUT, FUEL, PRECOMPILE,
                              INVOKE})
    imports = engine_imports.WASMTIME

    def __init__(self) -> None:
        self._engine: Any = None
        self._interrupted = False

    # -- host side ---------------------------------------------------------------------

    def locate(self, settings: EngineSettings) -> Installation:
        import os

        # Where `import wasmtime` would find it (a regular package), without importlib.
        site = next((p for p in sys.path
                     if os.path.isfile(os.path.join(p or ".", "wasmtime", "__init__.py"))), None)
        if site is None:
            raise missing(self.name, "the wasmtime Python package is not importable")
        site = os.path.abspath(site)
        return Installation(version=dist_version(site, "wasmtime"), import_paths=(site,),
                            host_paths=(site,))

    # -- precompiled-module cache -------------------------------------------------------

    def cache_identity(self, installation: Installation) -> str:
        # The package version and the exact native library it loads.
        import os

        library = ""
        if installation.import_paths:
            path = native_library(installation.import_paths[0])
            try:
                library = build_stamp(path, os.path.basename(path))
            except OSError:
                pass
        return f"wasmtime-py {installation.version} {library}"

    def codegen_settings(self, limits: Limits) -> dict[str, Any]:
        return {"epoch_interruption": True, "consume_fuel": limits.fuel is not None}

    def precompile(self, module: str, out: str, codegen: dict[str, Any],
                   installation: Installation) -> None:
        import wasmtime

        engine = wasmtime.Engine(_config(wasmtime, codegen))
        try:
            compiled = wasmtime.Module.from_file(engine, module)
        except (wasmtime.WasmtimeError, ValueError) as e:
            raise EngineError(f"cannot compile: {summary(e)}") from None
        with open(out, "wb") as f:
            f.write(compiled.serialize())

    # -- container side ----------------------------------------------------------------

    def run(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        # The launcher's own environment, read when the first WASI call starts the
        # runtime; the guest's is `env`, already taken.
        for name, value in TOKIO_ONE_WORKER.items():
            posix.putenv(name, value)
        return self.run_on(binding(plan), plan, env)

    def run_on(self, wasmtime: Any, plan: Plan, env: list[tuple[str, str]]) -> int:
        """Run the guest on `wasmtime`: the package, or the lean binding (the same API)."""
        engine = wasmtime.Engine(_config(wasmtime, self.codegen_settings(plan.limits)))
        self._engine = engine
        if self._interrupted:
            engine.increment_epoch()
        store = wasmtime.Store(engine)
        store.set_wasi(self._wasi(wasmtime, plan, env))
        store.set_epoch_deadline(1)
        if plan.limits.max_memory is not None:
            store.set_limits(memory_size=plan.limits.max_memory)
        if plan.limits.fuel is not None:
            store.set_fuel(plan.limits.fuel)
        if plan.kind == "component":
            return self._run_component(wasmtime, engine, store, plan)
        module = self._module(wasmtime, engine, plan)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        if plan.invoke:
            # A reactor may import host functions of its own embedder: they trap if called.
            linker.define_unknown_imports_as_traps(module)
        instance = None
        try:
            instance = linker.instantiate(store, module)
            exports = instance.exports(store)
            if plan.invoke:
                return self._invoke(wasmtime, store, exports, plan) or self._memory_verdict(
                    wasmtime, store, instance, plan, 0)
            start = exports.get("_start")
            if not isinstance(start, wasmtime.Func):
                raise EngineError(f"{guest_path(plan.module)} exports no _start function")
            start(store)
        except wasmtime.ExitTrap as e:
            return self._memory_verdict(wasmtime, store, instance, plan, int(e.code))
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            return self._trap(wasmtime, e, store, instance, plan)
        return 0

    def _module(self, wasmtime: Any, engine: Any, plan: Plan) -> Any:
        if plan.artifact:
            # From runwasm's root-owned cache (or an image, where the node allows it):
            # memory-mapped, so containers running the same module share its code pages.
            try:
                return wasmtime.Module.deserialize_file(engine, plan.artifact)
            except (wasmtime.WasmtimeError, ValueError) as e:
                if plan.kind == "precompiled":
                    raise EngineError(f"cannot load precompiled {guest_path(plan.module)}: "
                                      f"{summary(e)}") from None
                sys.stderr.write(f"runwasm: cached artifact unusable ({summary(e)}); "
                                 "compiling\n")
        try:
            return wasmtime.Module.from_file(engine, plan.module)
        except (wasmtime.WasmtimeError, ValueError) as e:
            raise EngineError(f"cannot compile {guest_path(plan.module)}: {summary(e)}") from None

    def _invoke(self, wasmtime: Any, store: Any, exports: Any, plan: Plan) -> int:
        """A reactor: _initialize if it has one, then the named export; an i32 it returns
        is the exit code."""
        initialize = exports.get("_initialize")
        if isinstance(initialize, wasmtime.Func):
            initialize(store)
        function = exports.get(plan.invoke)
        if not isinstance(function, wasmtime.Func):
            raise EngineError(f"{guest_path(plan.module)} exports no function {plan.invoke}")
        result = function(store)
        return int(result) & 0xFF if isinstance(result, int) else 0

    def _wasi(self, wasmtime: Any, plan: Plan, env: list[tuple[str, str]]) -> Any:
        wasi = wasmtime.WasiConfig()
        wasi.argv = plan.args
        wasi.env = env
        wasi.inherit_stdin()
        wasi.inherit_stdout()
        wasi.inherit_stderr()
        # Writable at the WASI level: a read-only image root is a read-only mount, so
        # the kernel refuses writes to it (EROFS) while volumes under it stay writable.
        wasi.preopen_dir(APP_ROOT, "/")
        wasi.preopen_dir(plan.cwd, ".")
        return wasi

    def _run_component(self, wasmtime: Any, engine: Any, store: Any, plan: Plan) -> int:
        from wasmtime import component

        try:
            comp = component.Component.from_file(engine, plan.module)
        except (wasmtime.WasmtimeError, ValueError) as e:
            raise EngineError(f"cannot compile {guest_path(plan.module)}: {summary(e)}") from None
        names = [n for n in comp.type.exports(engine) if n.startswith(_WASI_RUN)]
        names = names or [_WASI_RUN + ".0"]
        interface = comp.get_export_index(names[0])
        run_index = comp.get_export_index("run", interface) if interface else None
        if run_index is None:
            raise EngineError(f"{guest_path(plan.module)} is not a WASI command component "
                              f"(no {_WASI_RUN}.x run export)")
        linker = component.Linker(engine)
        linker.add_wasip2()
        try:
            instance = linker.instantiate(store, comp)
            run = instance.get_func(store, run_index)
            if run is None:
                raise EngineError(f"{guest_path(plan.module)}: {_WASI_RUN}.x run is not a function")
            result = run(store)
        except wasmtime.ExitTrap as e:
            return int(e.code)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            return self._trap(wasmtime, e, store, None, plan)
        return 0 if getattr(result, "tag", "ok") == "ok" else 1

    def _trap(self, wasmtime: Any, error: Exception, store: Any, instance: Any,
              plan: Plan) -> int:
        if self._interrupted:
            return EXIT_TRAP  # the launcher turns this into 128+signal or the timeout code
        if getattr(error, "trap_code", None) == wasmtime.TrapCode.OUT_OF_FUEL:
            sys.stderr.write(f"runwasm: guest ran out of fuel (runwasm.io/fuel="
                             f"{plan.limits.fuel})\n")
            return EXIT_FUEL
        verdict = self._memory_verdict(wasmtime, store, instance, plan, EXIT_TRAP)
        if verdict == EXIT_TRAP:
            sys.stderr.write(f"runwasm: guest trapped: {summary(error)}\n")
        return verdict

    def _memory_verdict(self, wasmtime: Any, store: Any, instance: Any, plan: Plan,
                        code: int) -> int:
        """A guest that failed with its memory at the limit failed because of the limit."""
        limit = plan.limits.max_memory
        if code == 0 or limit is None or instance is None:
            return code
        memory = instance.exports(store).get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return code
        # wasmtime-py cannot report a failed memory.grow, so: a guest that failed with
        # less than a quarter of its limit (or 1 MiB) left failed because of the limit.
        if limit - memory.data_len(store) < max(1 << 20, limit // 4):
            sys.stderr.write(f"runwasm: guest failed after reaching its memory limit "
                             f"(runwasm.io/max-memory={limit} bytes)\n")
            return EXIT_MEMORY
        return code

    def interrupt(self) -> None:
        self._interrupted = True
        if self._engine is not None:
            self._engine.increment_epoch()


def native_library(site: str) -> str:
    """The libwasmtime the package in `site` loads, where its `_ffi` looks for it."""
    machine = posix.uname().machine
    machine = {"AMD64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}.get(machine, machine)
    prefix = site if not site or site.endswith("/") else site + "/"  # as os.path.join
    return f"{prefix}wasmtime/{sys.platform}-{machine}/_libwasmtime.so"


def binding(plan: Plan) -> Any:
    """The lean binding where it covers the plan (a binary module, from the cache or
    compiled here), else the full package."""
    if plan.kind in (MODULE, PRECOMPILED):
        from runwasm.engines import wasmtime_capi

        if wasmtime_capi.load():
            return wasmtime_capi
    import wasmtime

    return wasmtime


def _config(wasmtime: Any, codegen: dict[str, Any]) -> Any:
    """The engine config; the same for compiling into the cache and for running."""
    config = wasmtime.Config()
    config.epoch_interruption = bool(codegen.get("epoch_interruption", True))
    if codegen.get("consume_fuel"):
        config.consume_fuel = True
    return config


def summary(error: BaseException) -> str:
    """One line: the cause wasmtime gives after its backtrace, else the first line."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    head, _, cause = text.partition("Caused by:")
    lines = [line.strip() for line in (cause or head).splitlines() if line.strip()]
    return lines[0] if lines else text.splitlines()[0]


ADAPTER = WasmtimeInProcess

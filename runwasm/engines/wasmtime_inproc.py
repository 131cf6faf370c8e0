"""Wasmtime in-process, through the `wasmtime` Python package.

Signals: the Python handler of a signal never runs while the main thread is inside
wasm, so the launcher blocks the signals and a helper thread calls `interrupt()`, which
bumps the engine's epoch; the guest, run with an epoch deadline of one tick, traps at
its next loop back-edge or call.
"""

from __future__ import annotations

import sys
import threading

import wasmtime

from runwasm.engines.base import EXIT_TRAP, Engine, EngineError
from runwasm.plan import APP_ROOT, Plan


class WasmtimeInProcess(Engine):
    name = "wasmtime"

    def __init__(self) -> None:
        self._engine: wasmtime.Engine | None = None
        self._interrupted = threading.Event()

    def run(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        config = wasmtime.Config()
        config.epoch_interruption = True
        engine = wasmtime.Engine(config)
        self._engine = engine
        if self._interrupted.is_set():
            engine.increment_epoch()
        try:
            module = wasmtime.Module.from_file(engine, plan.module)
        except (wasmtime.WasmtimeError, ValueError) as e:
            raise EngineError(f"cannot compile {_guest(plan.module)}: {_first_line(e)}") from None
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
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        store.set_epoch_deadline(1)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        try:
            instance = linker.instantiate(store, module)
        except wasmtime.ExitTrap as e:
            return int(e.code)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            raise EngineError(
                f"cannot instantiate {_guest(plan.module)}: {_first_line(e)}"
            ) from None
        start = instance.exports(store).get("_start")
        if not isinstance(start, wasmtime.Func):
            raise EngineError(f"{_guest(plan.module)} exports no _start function")
        try:
            start(store)
        except wasmtime.ExitTrap as e:
            return int(e.code)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            if self._interrupted.is_set():
                return EXIT_TRAP  # the launcher turns this into 128+signal
            sys.stderr.write(f"runwasm: guest trapped: {_first_line(e)}\n")
            return EXIT_TRAP
        return 0

    def interrupt(self) -> None:
        self._interrupted.set()
        if self._engine is not None:
            self._engine.increment_epoch()


def _guest(path: str) -> str:
    return path[len(APP_ROOT):] if path.startswith(APP_ROOT + "/") else path


def _first_line(error: BaseException) -> str:
    """One line: the cause wasmtime gives after its backtrace, else the first line."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    head, _, cause = text.partition("Caused by:")
    lines = [line.strip() for line in (cause or head).splitlines() if line.strip()]
    if cause and "backtrace" in head:
        # "wasm trap: wasm `unreachable` instruction executed" (+ the frame, briefly)
        return lines[0] if lines else head.splitlines()[0]
    return lines[0] if lines else text.splitlines()[0]


ADAPTER = WasmtimeInProcess()

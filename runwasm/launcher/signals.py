"""Ending the guest from outside: signals and the wall-clock timeout.

The launcher is often pid 1 in its PID namespace, which only receives signals it
handles, and Python signal handlers never run while the main thread is inside wasm.
So the terminating signals are blocked in every thread and one helper thread takes
them with sigwait; it asks the engine to interrupt the guest and, if the guest is still
running after a grace period (stuck in a host call epochs cannot reach, or an engine
that cannot be interrupted), kills the engine's child and ends the process itself,
with the same exit code. The timeout works the same way from a timer.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from runwasm.engines.base import EXIT_TIMEOUT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from runwasm.engines.base import Engine

TERMINATING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
               signal.SIGUSR1, signal.SIGUSR2)
GRACE_SECONDS = 0.5


class Stopper:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self.received: int | None = None  # the signal that ended the guest
        self.timed_out: float | None = None  # the timeout that ended it, in seconds

    def install(self, timeout: float | None) -> None:
        """Block the signals (before any other thread exists) and start the waiters."""
        signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATING)
        threading.Thread(target=self._wait_signal, name="runwasm-signals", daemon=True).start()
        if timeout is not None:
            timer = threading.Timer(timeout, self._time_out, args=(timeout,))
            timer.daemon = True
            timer.start()

    def _wait_signal(self) -> None:
        signum = signal.sigwait(TERMINATING)
        with self._lock:
            if self.timed_out is None:
                self.received = signum
        self._stop(128 + signum)

    def _time_out(self, timeout: float) -> None:
        with self._lock:
            if self.received is not None:
                return
            self.timed_out = timeout
        sys.stderr.write(f"runwasm: guest ran past its timeout (runwasm.io/timeout={timeout:g}s)\n")
        self._stop(EXIT_TIMEOUT)

    def _stop(self, code: int) -> None:
        self._engine.interrupt()
        threading.Event().wait(GRACE_SECONDS)
        # Still here: the guest did not stop by itself.
        self._engine.kill()
        _flush()
        os._exit(code)

    def exit_code(self, guest_code: int) -> int:
        with self._lock:
            if self.received is not None:
                return 128 + self.received
            if self.timed_out is not None:
                return EXIT_TIMEOUT
        return guest_code


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass

"""Ending the guest from outside: signals and the wall-clock timeout.

The launcher is often pid 1 in its PID namespace, which only receives signals it
handles, and Python signal handlers never run while the main thread is inside wasm.
So the terminating signals are blocked in every thread and one helper thread takes
them with sigwait; it asks the engine to interrupt the guest and, if the guest is still
running after a grace period (stuck in a host call epochs cannot reach, or an engine
that cannot be interrupted), kills the engine's child and ends the process itself,
with the same exit code. The timeout works the same way from a timer thread.

It uses the C modules `_signal` and `_thread` directly: `signal` imports `enum` and
`threading` more, together about 3 ms of every Wasm container's start.
"""

from __future__ import annotations

import _thread
import posix  # not os (launcher/main.py says why)
import sys
import time

from runwasm.engines.base import EXIT_TIMEOUT

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions, typed

    from runwasm.engines.base import Engine
else:
    import _signal

TERMINATING = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT,
               _signal.SIGUSR1, _signal.SIGUSR2)
GRACE_SECONDS = 0.5


class Stopper:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = _thread.allocate_lock()
        self.received: int | None = None  # the signal that ended the guest
        self.timed_out: float | None = None  # the timeout that ended it, in seconds

    def install(self, timeout: float | None) -> None:
        """Block the signals (before any other thread exists) and start the waiters."""
        _signal.pthread_sigmask(_signal.SIG_BLOCK, TERMINATING)
        _thread.start_new_thread(self._wait_signal, ())
        if timeout is not None:
            _thread.start_new_thread(self._time_out, (timeout,))

    def _wait_signal(self) -> None:
        signum = int(_signal.sigwait(TERMINATING))
        with self._lock:
            if self.timed_out is None:
                self.received = signum
        self._stop(128 + signum)

    def _time_out(self, timeout: float) -> None:
        time.sleep(timeout)
        with self._lock:
            if self.received is not None:
                return
            self.timed_out = timeout
        sys.stderr.write(f"runwasm: guest ran past its timeout (runwasm.io/timeout={timeout:g}s)\n")
        self._stop(EXIT_TIMEOUT)

    def _stop(self, code: int) -> None:
        self._engine.interrupt()
        time.sleep(GRACE_SECONDS)
        # Still here: the guest did not stop by itself.
        self._engine.kill()
        _flush()
        posix._exit(code)

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

"""Signals for a launcher that is often pid 1 in its PID namespace.

pid 1 only receives signals it handles, and Python signal handlers never run while the
main thread is inside wasm. So the terminating signals are blocked in every thread and
one helper thread takes them with sigwait: it asks the engine to interrupt the guest,
and if the guest is stuck in a host call that cannot be interrupted, ends the process
itself after a grace period, with the same exit code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

TERMINATING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
               signal.SIGUSR1, signal.SIGUSR2)
GRACE_SECONDS = 0.5


class SignalRelay:
    def __init__(self, interrupt: Callable[[], None]) -> None:
        self._interrupt = interrupt
        self.received: int | None = None

    def install(self) -> None:
        """Block the signals (before any other thread exists) and start the waiter."""
        signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATING)
        threading.Thread(target=self._wait, name="runwasm-signals", daemon=True).start()

    def _wait(self) -> None:
        signum = signal.sigwait(TERMINATING)
        self.received = signum
        self._interrupt()
        threading.Event().wait(GRACE_SECONDS)
        # Still here: the guest is blocked in a host call epochs cannot reach.
        _flush()
        os._exit(128 + signum)

    def exit_code(self, guest_code: int) -> int:
        return 128 + self.received if self.received is not None else guest_code


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass

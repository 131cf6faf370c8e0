"""The contract every engine adapter keeps."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runwasm.plan import Plan

# Exit codes the launcher uses besides the guest's own (documented in the README).
EXIT_TRAP = 134  # the guest trapped (as a native process that aborts: 128+SIGABRT)
EXIT_LAUNCH = 126  # the module could not be loaded or instantiated


class EngineError(Exception):
    """The module could not be run; the message is one line for the user."""


class Engine(abc.ABC):
    name: str

    @abc.abstractmethod
    def run(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        """Run the guest to completion in this process; return its exit code.

        A trap is reported on stderr and returns EXIT_TRAP; a load failure raises
        EngineError.
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Stop the guest promptly; called from another thread on SIGTERM/SIGINT."""

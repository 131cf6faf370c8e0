"""The one error type whose message is shown to the user."""

from __future__ import annotations


class RunwasmError(Exception):
    """A failure with a one-line, user-facing message in runc's style."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message

"""An expected mistake, said to a person in one line: what is wrong and what to do, with its exit code."""
from __future__ import annotations


class CommandError(Exception):
    """Raised where the mistake is understood; `cli.main` prints the message (no traceback) and exits with
    `exit_code`: 2 for a configuration or usage mistake, 1 for a failure of the run."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

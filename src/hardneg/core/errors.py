"""User-facing errors: one clear message, never a traceback (the CLI prints them and exits 2)."""

from __future__ import annotations

from pathlib import Path


class HardnegError(Exception):
    """An error caused by the user's input or environment, with a message that says how to fix it."""


class DataError(HardnegError):
    """Bad input data. ``DataError(path, line, problem, fix)`` renders as ``path:line: problem (fix)``."""

    def __init__(self, path: str | Path | None, line: int | None, problem: str, fix: str | None = None):
        self.path, self.line, self.problem, self.fix = path, line, problem, fix
        where = str(path) if path is not None else "<input>"
        if line is not None:
            where += f":{line}"
        msg = f"{where}: {problem}"
        if fix:
            msg += f" — {fix}"
        super().__init__(msg)

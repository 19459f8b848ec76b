"""The ways a run ends early on purpose: bad input (exit 2), a diverged loss or a failed write (exit 1)."""
from pathlib import Path


class UsageError(Exception):
    """Bad input from the user: main_*.py prints the message as one line and exits with code 2."""


class TrainingDiverged(Exception):
    """A loss became NaN or inf: main_*.py prints the message as one line and exits with code 1."""


class WriteFailed(Exception):
    """A results file could not be written (disk full, no permission, an I/O error): main_*.py prints
    "cannot write <file>: <cause>" as one line and exits with code 1; the last complete checkpoint stays."""

    def __init__(self, path: Path, cause: str, note: str = "") -> None:
        self.path, self.cause = Path(path), cause
        super().__init__(f"cannot write {path}: {cause}{note}")

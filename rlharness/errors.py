"""The two ways a run ends early on purpose: bad input (exit 2) and a diverged loss (exit 1)."""


class UsageError(Exception):
    """Bad input from the user: main_*.py prints the message as one line and exits with code 2."""


class TrainingDiverged(Exception):
    """A loss became NaN or inf: main_*.py prints the message as one line and exits with code 1."""

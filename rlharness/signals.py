"""Ctrl-C and SIGTERM as a request to stop cleanly: the training loop finishes its step, saves and exits 0."""
import signal
from typing import Any


class StopRequest:
    """Turns Ctrl-C (SIGINT) and SIGTERM into a request that the training loop honours after the current step.

    The loop then saves, plots and exits cleanly. A second signal stops at once (KeyboardInterrupt). SIGINT is
    handled even where a shell started the run in the background with SIGINT ignored.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict = {}

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopRequest":
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

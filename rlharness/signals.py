"""Ctrl-C, SIGTERM and SIGHUP as a request to stop cleanly: the training loop finishes its step, saves and exits 0."""
import contextlib
import os
import select
import signal
from typing import Any

# SIGHUP: the terminal closed (a remote session ended), the commonest way a long run ends; Windows has none
SIGHUP = getattr(signal, "SIGHUP", None)
STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM] + ([SIGHUP] if SIGHUP is not None else [])


class StopRequest:
    """Turns Ctrl-C (SIGINT), SIGTERM and SIGHUP into a request that the training loop honours after the current
    step.

    The loop then saves, plots and exits cleanly. A second Ctrl-C or SIGTERM stops at once (KeyboardInterrupt);
    a second SIGHUP does not (a closing terminal may send more than one). SIGINT is handled even where a shell
    started the run in the background with SIGINT ignored; an ignored SIGHUP (nohup) stays ignored.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict = {}

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == SIGHUP:
            silence_lost_outputs()
            if self.signal_name is not None:
                return
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopRequest":
        for signum in STOP_SIGNALS:
            if signum == SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # nohup asked for the run to outlive its terminal
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def silence_lost_outputs() -> None:
    """Point stdout and stderr at /dev/null where what they wrote to is gone (a closed terminal, a pipe whose
    reader died): the run's remaining prints would otherwise fail (EIO, EPIPE) before it had saved."""
    if not hasattr(select, "poll"):
        return
    for fd in (1, 2):
        with contextlib.suppress(OSError, ValueError):
            poll = select.poll()
            poll.register(fd, select.POLLOUT)  # POLLERR and POLLHUP are reported whatever is asked for
            if any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0)):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)

"""One training run per checkpoint folder, and checkpoint swaps that no reader sees half done.

Both are advisory flock locks, which the OS releases when the process ends, however it ends: a killed run never
leaves a stale lock. A training run holds <chkpt_dir>/.lock (its pid written inside) for its whole life; a
second training run on that folder is refused. --evaluate takes no run lock: it may read best/ beside a training
run, holding a shared lock on the folder itself while it loads, so that it never meets best/ between the two
renames of a swap (which hold the exclusive one).
"""
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rlharness.errors import UsageError

try:
    import fcntl
except ImportError:  # Windows has no flock: runs there are not guarded
    fcntl = None

LOCK_FILE = ".lock"
_held: dict[Path, IO] = {}  # this process's run locks, by folder


def _refusal(folder: Path, lock: IO) -> UsageError:
    lock.seek(0)
    pid = lock.read().strip() or "unknown"  # empty for the instant between its lock and its write
    return UsageError(f"{folder} is in use by another training run (pid {pid}): one run per checkpoint folder; "
                      "wait for it or stop it, or choose another --chkpt-dir (--evaluate may read it meanwhile)")


def hold_run_lock(folder: Path) -> None:
    """Take <folder>/.lock for this training run, or refuse (UsageError naming the running process's pid).

    The lock lasts until release_run_lock(folder) or the end of the process. Nothing else in the folder is
    touched first. A folder that cannot be written is a UsageError, as in files.check_writable. A lock this
    process still holds is an earlier run of its own that ended in an error (in a notebook, a test): taken over.
    """
    if fcntl is None:
        return
    folder = Path(folder)
    release_run_lock(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / LOCK_FILE, "a+")
    except OSError as e:
        raise UsageError(f"cannot write to {folder}: {e.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        refusal = _refusal(folder, lock)
        lock.close()
        raise refusal from None
    except OSError:  # a file system without flock (some network mounts): run unguarded rather than not at all
        lock.close()
        return
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    _held[folder.resolve()] = lock


def release_run_lock(folder: Path) -> None:
    """Let another run use the folder (closing the lock file releases the lock)."""
    lock = _held.pop(Path(folder).resolve(), None)
    if lock is not None:
        lock.close()


def refuse_if_running(folder: Path) -> None:
    """Refuse (UsageError) if a training run holds <folder>/.lock, without taking it or writing anything.

    For the checks before a run takes its lock (--resume reads latest/, which a running run may be rewriting).
    """
    if fcntl is None or Path(folder).resolve() in _held:
        return
    try:
        lock = open(Path(folder) / LOCK_FILE)
    except OSError:  # no lock file: no run has ever held one here
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refusal(Path(folder), lock) from None
        except OSError:
            pass


@contextlib.contextmanager
def folder_lock(folder: Path, shared: bool) -> Iterator[None]:
    """Hold a flock on the folder itself: exclusive while checkpoint folders inside it are renamed, shared while
    one is read. A folder that does not exist yet has nothing to read or swap: no lock."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        fd = None
    try:
        if fd is not None and fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)

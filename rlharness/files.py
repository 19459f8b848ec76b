"""Files that survive a crash: atomic writes, checkpoints read as data only, folders checked before training.

A write that fails (a full disk, no permission, an I/O error) is a WriteFailed naming the file and the cause.
"""
import contextlib
import io
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rlharness.errors import UsageError, WriteFailed


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; on success rename it into place, else delete it.

    A crash mid-write never leaves a half-written file at `path`. The temporary name keeps the suffix, so
    writers that pick the format from it (savefig, Pillow) still work. An OSError on the way (the folder, the
    write, the rename) becomes a WriteFailed naming `path`.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise WriteFailed(path, cause(e)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def cause(e: OSError) -> str:
    """What the OS said, e.g. "No space left on device" (the message itself when it carries no errno)."""
    return e.strerror or first_line(e)


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through atomic_path.

    torch serialises into memory and a plain file write puts the bytes on disk: torch's own file writer reports a
    full disk as an obscure RuntimeError ("unexpected pos ...", "basic_ios::clear"), a plain write as the OSError
    it is. Measured on 2 cores: no slower for the networks (1.2-1.4 ms a file against 1.7-2.0 ms), 1.2x for an
    80 MB replay buffer (--save-buffer), which is then held twice in memory for the moment of the write.
    """
    data = io.BytesIO()
    torch.save(obj, data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.getbuffer())


def write_text_atomic(text: str, path: Path) -> Path:
    """Write a text file through atomic_path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Any:
    """torch.load with weights_only=True (a checkpoint is data, never code); problems become UsageErrors."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no saved agent at {path} (train one first)")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):  # a pickled object: refused before any of it could run
            raise UsageError(f"cannot read checkpoint {path}: it holds pickled Python objects, not tensors "
                             "(refused unread; a checkpoint must be data only)") from None
        raise UsageError(f"cannot read checkpoint {path}: corrupt file ({first_line(e)})") from None
    except Exception as e:
        raise UsageError(f"cannot read checkpoint {path}: {first_line(e)}") from None


def first_line(e: Exception) -> str:
    """An exception's message cut to its first line (or its type's name when it has none)."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def check_writable(*folders: Path) -> None:
    """Fail before training, not after it, when a results folder cannot be written."""
    for folder in folders:
        try:
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write_test_{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UsageError(f"cannot write to {folder}: {e.strerror}") from None

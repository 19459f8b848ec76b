"""Saved agents: one state_dict file per network and optimiser (as in the lecture) plus agent.json.

A checkpoint folder is written whole as <name>.new/ and then swapped in, so a crash at any instant leaves one
complete checkpoint; a write that fails leaves the last complete one and no <name>.new/ (WriteFailed). Everything
is read with weights_only (data, never code); every problem is a UsageError. Reading never changes a folder: only
the training run that holds the folder's lock (locks.py) finishes or clears what a crash left.
"""
import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rlharness.envs import runs_as
from rlharness.errors import UsageError, WriteFailed
from rlharness.files import cause, first_line, load_checkpoint, save_atomic, write_text_atomic
from rlharness.locks import folder_lock


def save_state_dicts(parts: dict, chkpt_dir: Path) -> None:
    """Write each part's state_dict to chkpt_dir/<name>.pt (the lecture's one file per network), atomically."""
    for name, part in parts.items():
        save_atomic(part.state_dict(), Path(chkpt_dir) / f"{name}.pt")


def load_state_dicts(parts: dict, chkpt_dir: Path, device: Any = "cpu") -> None:
    """Load what save_state_dicts wrote; a missing, corrupt or mismatched file is a UsageError."""
    for name, part in parts.items():
        path = Path(chkpt_dir) / f"{name}.pt"
        state = load_checkpoint(path, device)
        built = [group.get("capturable") for group in getattr(part, "param_groups", [])]
        try:
            part.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UsageError(f"checkpoint {path} does not fit this agent: {first_line(e)}") from None
        if isinstance(part, torch.optim.Optimizer):
            for group, capturable in zip(part.param_groups, built):  # the saved flag is the saving device's:
                group["capturable"] = capturable                      # keep this device's (GPU: True, CPU: False)
            lay_out_like_parameters(part)


def lay_out_like_parameters(optimizer: torch.optim.Optimizer) -> None:
    """Store each optimiser state tensor (Adam's moments) in its parameter's memory layout.

    Fused Adam pairs parameter, gradient and moment values by memory position, so a moment laid out otherwise
    (e.g. row-major, saved before a layer stored its weight column-major) would update the wrong entries, silently.
    load_state_dict keeps the saved layout; this re-lays it.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    optimizer.state[p][key] = torch.empty_strided(p.shape, p.stride(), dtype=value.dtype,
                                                                  device=value.device).copy_(value)


def save_agent(agent: Any, sizes: dict, chkpt_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """Write a complete checkpoint folder: agent.save_models, agent.json (`sizes`) and `extra` {file name: object}.

    Everything goes into <chkpt_dir>.new/ first; then the old folder is renamed to <chkpt_dir>.old/, the new one
    into place, and the old one deleted, under the folder's exclusive lock (a reader waits). A crash at any
    instant leaves one complete checkpoint: either the old or the new folder (recover_checkpoint() finishes an
    interrupted swap). A write that fails removes <chkpt_dir>.new/ and raises WriteFailed naming the file as it
    would have been in chkpt_dir; the old folder stays.
    """
    chkpt_dir = Path(chkpt_dir)
    recover_checkpoint(chkpt_dir)
    new, old = chkpt_dir.with_name(chkpt_dir.name + ".new"), chkpt_dir.with_name(chkpt_dir.name + ".old")
    shutil.rmtree(new, ignore_errors=True)
    try:
        agent.save_models(new)
        for name, obj in (extra or {}).items():
            save_atomic(obj, new / name)
        write_text_atomic(json.dumps(sizes, indent=1), new / "agent.json")
        with folder_lock(chkpt_dir.parent, shared=False):
            try:
                if chkpt_dir.exists():
                    os.replace(chkpt_dir, old)
                os.replace(new, chkpt_dir)
            except OSError as e:
                raise WriteFailed(chkpt_dir, cause(e)) from None
            shutil.rmtree(old, ignore_errors=True)
    except WriteFailed as e:
        shutil.rmtree(new, ignore_errors=True)  # disk full: deleting the half-written folder frees its space
        with contextlib.suppress(OSError):
            recover_checkpoint(chkpt_dir)  # a swap cut short by the failure: the old folder back in place
        path = chkpt_dir / e.path.relative_to(new) if e.path.is_relative_to(new) else e.path
        kept = f" (the last complete checkpoint in {chkpt_dir} is kept)" if chkpt_dir.exists() else ""
        raise WriteFailed(path, e.cause, kept) from None


def recover_checkpoint(chkpt_dir: Path) -> str | None:
    """Finish a save that a crash interrupted: put <chkpt_dir>.old/ back if the swap was cut short, and drop a
    half-written <chkpt_dir>.new/. Returns what it did, as a line to log (None when there was nothing to do)."""
    chkpt_dir = Path(chkpt_dir)
    new, old = chkpt_dir.with_name(chkpt_dir.name + ".new"), chkpt_dir.with_name(chkpt_dir.name + ".old")
    done = []
    with folder_lock(chkpt_dir.parent, shared=False):
        if old.exists():
            if chkpt_dir.exists():
                shutil.rmtree(old)
            else:
                os.replace(old, chkpt_dir)
                done.append(f"put back {chkpt_dir} from {old.name}/ (a save cut short between its renames)")
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)
            done.append(f"removed {new}, left by a save that did not finish")
    return "; ".join(done) or None


def complete_folder(chkpt_dir: Path) -> Path:
    """The folder to read for chkpt_dir: itself, or <chkpt_dir>.old/ when a crash cut a swap short between its two
    renames (recover_checkpoint() puts it back, but only a run holding the folder's lock may)."""
    chkpt_dir = Path(chkpt_dir)
    old = chkpt_dir.with_name(chkpt_dir.name + ".old")
    return old if not chkpt_dir.exists() and old.is_dir() else chkpt_dir


def read_agent_json(chkpt_dir: Path, algorithm: str) -> dict:
    """chkpt_dir/agent.json, refused in one line when it is missing, corrupt or written by another algorithm.

    A checkpoint from before agent.json named its algorithm passes here; load_agent then checks its files.
    """
    meta_file = complete_folder(chkpt_dir) / "agent.json"
    if not meta_file.is_file():
        raise UsageError(f"no saved agent in {chkpt_dir} (train one first)")
    try:
        sizes = json.loads(meta_file.read_text())
    except ValueError:
        sizes = None
    if not isinstance(sizes, dict) or not {"env", "input_dims", "n_actions"} <= sizes.keys():
        raise UsageError(f"corrupt checkpoint description {meta_file}")
    if sizes.get("algorithm", algorithm) != algorithm:
        raise UsageError(f"the checkpoint in {chkpt_dir} holds a {sizes['algorithm']!r} agent, not {algorithm!r} "
                         "(point --chkpt-dir at a folder this script wrote)")
    return sizes


def load_agent(chkpt_dir: Path, expected: dict, build: Callable[[dict], Any]) -> Any:
    """Read agent.json, check it fits `expected` (this run's agent_sizes: algorithm, env, observation and action
    sizes), build the agent with `build(sizes)` and load its networks.

    Holds the folder's shared lock while it reads: a training run's swap of chkpt_dir waits until it is done.
    """
    algorithm, env_id = expected["algorithm"], expected["env"]
    with folder_lock(Path(chkpt_dir).parent, shared=True):
        chkpt_dir = complete_folder(chkpt_dir)
        sizes = read_agent_json(chkpt_dir, algorithm)
        if runs_as(sizes["env"]) != runs_as(env_id):  # LunarLanderContinuous-v2 saved on gym loads as -v3
            raise UsageError(f"the saved agent in {chkpt_dir} was trained on {sizes['env']}, not {env_id}")
        saved, here = (sizes["input_dims"], sizes["n_actions"]), (expected["input_dims"], expected["n_actions"])
        if saved != here:
            raise UsageError(f"the saved agent has observation/action sizes {saved}, {env_id} has {here}")
        try:
            agent = build(sizes)
            agent.load_models(chkpt_dir)
        except (KeyError, TypeError, UsageError) as e:
            if "algorithm" in sizes and isinstance(e, UsageError):
                raise
            # an agent.json from before it named its algorithm: its files tell whether it is this algorithm's
            detail = f"agent.json has no {e}" if isinstance(e, KeyError) else str(e)
            raise UsageError(f"the checkpoint in {chkpt_dir} is not a {algorithm!r} agent ({detail})") from None
    return agent


def keep_previous_run(chkpt_dir: Path) -> Path | None:
    """Move an earlier run's best/ and latest/ into chkpt_dir/previous/ (replacing an older previous/).

    A fresh run starts over without deleting what the last one saved. Returns previous/ if anything moved.
    """
    chkpt_dir = Path(chkpt_dir)
    for name in ("best", "latest"):
        recover_checkpoint(chkpt_dir / name)
    earlier = [chkpt_dir / name for name in ("best", "latest") if (chkpt_dir / name).exists()]
    if not earlier:
        return None
    previous = chkpt_dir / "previous"
    with folder_lock(chkpt_dir, shared=False):
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir(parents=True)
        for folder in earlier:
            os.replace(folder, previous / folder.name)
    return previous


def read_training_state(chkpt_dir: Path) -> dict:
    """Load chkpt_dir/training_state.pt (weights_only); a missing or corrupt one is a UsageError."""
    path = complete_folder(chkpt_dir) / "training_state.pt"
    if not path.is_file():
        raise UsageError(f"no run to resume in {chkpt_dir} (no training_state.pt; start one without --resume)")
    state = load_checkpoint(path)
    if not isinstance(state, dict) or not {"config", "total_steps", "scores", "rng"} <= state.keys():
        raise UsageError(f"cannot read checkpoint {path}: not a training state")
    return state

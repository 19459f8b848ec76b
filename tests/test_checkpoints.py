"""rlharness.files and rlharness.checkpoints: atomic saves, damaged and pickled files refused in one line, an
interrupted save recovered, saved sizes checked, unwritable folders, an earlier run kept in previous/.

The end-to-end tests run once per algorithm (the `algo` fixture in conftest.py).
"""
import copy
import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from rlharness import checkpoints, files, locks
from rlharness.errors import UsageError

from conftest import DATA, ROOT, dirs, run_in_process


# ---------------------------------------------------------------------------------------------------------
# Atomic files and complete checkpoint folders
# ---------------------------------------------------------------------------------------------------------
def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = files.write_text_atomic("old", tmp_path / "f.txt")
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    files.save_atomic({"w": torch.ones(2)}, tmp_path / "sub" / "w.pt")  # creates the folder
    assert torch.equal(files.load_checkpoint(tmp_path / "sub" / "w.pt")["w"], torch.ones(2))


class Parts:
    """A stand-in agent: one network, saved and loaded through save_state_dicts / load_state_dicts."""

    def __init__(self, seed):
        torch.manual_seed(seed)
        self.net = torch.nn.Linear(3, 2)

    def save_models(self, folder):
        checkpoints.save_state_dicts({"net": self.net}, folder)

    def load_models(self, folder):
        checkpoints.load_state_dicts({"net": self.net}, folder)


def test_save_agent_swaps_in_a_complete_folder(tmp_path):
    sizes = dict(algorithm="parts", env="Pendulum-v1", input_dims=3, n_actions=1)
    folder = tmp_path / "best"
    for seed in (0, 1):
        checkpoints.save_agent(Parts(seed), sizes, folder, extra={"note.pt": {"seed": seed}})
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["agent.json", "best", "net.pt", "note.pt"]
    assert json.loads((folder / "agent.json").read_text()) == sizes
    assert files.load_checkpoint(folder / "note.pt") == {"seed": 1}
    loaded = checkpoints.load_agent(folder, sizes, lambda saved: Parts(7))
    assert torch.equal(loaded.net.weight, Parts(1).net.weight)


def test_missing_and_foreign_files_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no saved agent at"):
        files.load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(UsageError, match="no run to resume in"):
        checkpoints.read_training_state(tmp_path)
    files.save_atomic({"scores": []}, tmp_path / "training_state.pt")
    with pytest.raises(UsageError, match="not a training state"):
        checkpoints.read_training_state(tmp_path)
    blocker = files.write_text_atomic("", tmp_path / "a-file")
    with pytest.raises(UsageError, match=f"cannot write to {blocker / 'sub'}"):
        files.check_writable(tmp_path / "ok", blocker / "sub")


def test_an_interrupted_save_is_recovered(tmp_path):
    latest = tmp_path / "latest"
    # killed between the two renames: only latest.old/ (complete) and latest.new/ are left
    (tmp_path / "latest.old").mkdir()
    (tmp_path / "latest.old" / "agent.json").write_text("{}")
    (tmp_path / "latest.new").mkdir()
    checkpoints.recover_checkpoint(latest)
    assert (latest / "agent.json").read_text() == "{}"
    assert not (tmp_path / "latest.old").exists() and not (tmp_path / "latest.new").exists()
    # killed while writing latest.new/: it is dropped, latest/ stays
    (tmp_path / "latest.new").mkdir()
    (tmp_path / "latest.new" / "actor.pt").write_bytes(b"half")
    checkpoints.recover_checkpoint(latest)
    assert not (tmp_path / "latest.new").exists() and (latest / "agent.json").is_file()
    # killed after the swap, before latest.old/ was deleted: the new latest/ stays
    (tmp_path / "latest.old").mkdir()
    checkpoints.recover_checkpoint(latest)
    assert not (tmp_path / "latest.old").exists() and (latest / "agent.json").is_file()


# ---------------------------------------------------------------------------------------------------------
# Damaged checkpoints: one line, exit 2, nothing on disk changed
# ---------------------------------------------------------------------------------------------------------
class Payload:
    """A pickled object that would create a file if it were ever unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def damage_truncate(path, tmp_path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_garbage(path, tmp_path):
    path.write_bytes(os.urandom(4096))


def damage_pickle(path, tmp_path):
    torch.save({"weight": Payload(tmp_path / "payload-ran")}, path)


DAMAGE = {"truncated": (damage_truncate, "cannot read checkpoint"),
          "garbage": (damage_garbage, "cannot read checkpoint"),
          "pickled-object": (damage_pickle, "holds pickled Python objects, not tensors")}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_checkpoint_file_is_refused_in_one_line(algo, tmp_path, capsys, damage):
    argv = ["--env", "Pendulum-v1", *algo.small, *dirs(tmp_path)]
    assert run_in_process(algo, [*argv, "--episodes", "1"], capsys)[0] == 0
    damage_file, message = DAMAGE[damage]
    chkpt = tmp_path / "run" / "tmp"
    for folder in ("best", "latest"):
        damage_file(chkpt / folder / "actor.pt", tmp_path)
    before = {p: p.read_bytes() for p in chkpt.rglob("*") if p.is_file()}
    for mode in (["--evaluate", "1", "--env", "Pendulum-v1", *dirs(tmp_path)], [*argv, "--resume", "--episodes", "2"]):
        code, out, err = run_in_process(algo, mode, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert message in err and "actor.pt" in err
    assert not (tmp_path / "payload-ran").exists()  # refused by weights_only, never executed
    assert {p: p.read_bytes() for p in chkpt.rglob("*") if p.is_file()} == before


def test_a_checkpoint_with_other_sizes_names_both_shapes(algo, tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", *algo.small, *dirs(tmp_path)]
    assert run_in_process(algo, [*argv, "--episodes", "1"], capsys)[0] == 0
    meta = tmp_path / "run" / "tmp" / "best" / "agent.json"
    meta.write_text(meta.read_text().replace('"input_dims": 3', '"input_dims": 8').replace('"n_actions": 1',
                                                                                          '"n_actions": 2'))
    code, _, err = run_in_process(algo, ["--env", "Pendulum-v1", *dirs(tmp_path), "--evaluate", "1"], capsys)
    assert code == 2 and "observation/action sizes (8, 2), Pendulum-v1 has (3, 1)" in err


def test_evaluate_refuses_an_agent_saved_for_another_env(algo, tmp_path, capsys):
    code, _, err = run_in_process(algo, ["--env", "Pendulum-v1", "--max-steps", "10", *algo.small,
                                         *dirs(tmp_path)], capsys)
    assert code == 0, err
    (tmp_path / "run" / "tmp" / "latest").rename(tmp_path / "run" / "tmp" / "best")
    code, _, err = run_in_process(algo, ["--evaluate", "1", *dirs(tmp_path)], capsys)
    assert code == 2 and "was trained on Pendulum-v1, not LunarLanderContinuous-v2" in err


def test_an_unwritable_results_folder_is_reported_before_training(algo, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for flag in ("--plot-dir", "--chkpt-dir"):
        argv = ["--env", "Pendulum-v1", *algo.small, *dirs(tmp_path), flag, str(blocker / "sub")]
        code, out, err = run_in_process(algo, argv, capsys)
        assert code == 2 and f"cannot write to {blocker / 'sub'}" in err and "episode" not in out
    assert not (tmp_path / "run" / "tmp" / "best").exists()


def test_a_fresh_run_keeps_the_earlier_runs_checkpoints_in_previous(algo, tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", "--episodes", "1", *algo.small, *dirs(tmp_path)]
    chkpt = tmp_path / "run" / "tmp"
    assert run_in_process(algo, [*argv, "--seed", "1"], capsys)[0] == 0
    first = (chkpt / "best" / "actor.pt").read_bytes()
    code, out, _ = run_in_process(algo, [*argv, "--seed", "2"], capsys)
    assert code == 0 and f"moved the earlier run's checkpoints to {chkpt / 'previous'}" in out
    assert (chkpt / "previous" / "best" / "actor.pt").read_bytes() == first
    assert (chkpt / "previous" / "latest" / "actor.pt").is_file()
    assert (chkpt / "best" / "actor.pt").read_bytes() != first


# ---------------------------------------------------------------------------------------------------------
# agent.json names the algorithm: a folder written by the other agent, or by anything else, is refused
# ---------------------------------------------------------------------------------------------------------
OTHER = {"ddpg": "sac", "sac": "ddpg"}


def test_agent_json_names_the_algorithm(algo, tmp_path, capsys):
    assert run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "1", *algo.small, *dirs(tmp_path)],
                          capsys)[0] == 0
    for folder in ("best", "latest"):
        assert json.loads((tmp_path / "run" / "tmp" / folder / "agent.json").read_text())["algorithm"] == algo.name


def test_a_folder_written_by_the_other_agent_is_refused_in_one_line(algo, tmp_path, capsys):
    other_name = OTHER[algo.name]
    script = f"main_{other_name}"
    subprocess.run([sys.executable, str(ROOT / other_name.upper() / f"{script}.py"), "--env", "Pendulum-v1",
                    "--episodes", "1", "--fc1-dims", "16", "--fc2-dims", "16", "--batch-size", "16",
                    "--learning-starts", "50", *dirs(tmp_path)], check=True, capture_output=True, timeout=300)
    chkpt = tmp_path / "run" / "tmp"
    before = {p: p.read_bytes() for p in chkpt.rglob("*") if p.is_file()}
    for mode in (["--evaluate", "1"], ["--resume"]):
        code, out, err = run_in_process(algo, [*mode, "--env", "Pendulum-v1", *dirs(tmp_path)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"holds a '{other_name}' agent, not '{algo.name}'" in err
    assert {p: p.read_bytes() for p in chkpt.rglob("*") if p.is_file()} == before


def test_a_folder_of_the_other_agent_from_before_agent_json_named_it_is_refused(algo, tmp_path, capsys):
    chkpt = tmp_path / "v1"
    shutil.copytree(DATA / "v1" / OTHER[algo.name], chkpt)
    before = {p: p.read_bytes() for p in chkpt.rglob("*") if p.is_file()}
    for mode, message in ((["--evaluate", "1"], f"is not a '{algo.name}' agent"),
                          (["--resume"], f"is not a '{algo.name}' run")):
        code, out, err = run_in_process(algo, [*mode, "--chkpt-dir", str(chkpt), "--plot-dir", str(tmp_path / "p")],
                                        capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert {p: p.read_bytes() for p in chkpt.rglob("*") if p.is_file()} == before


def test_a_folder_of_something_else_is_refused(algo, tmp_path, capsys):
    for text in ('{"algorithm": "ppo", "env": "LunarLanderContinuous-v2", "input_dims": 8, "n_actions": 2}',
                 '["not", "an", "agent"]', "not json"):
        (tmp_path / "best").mkdir(exist_ok=True)
        (tmp_path / "best" / "agent.json").write_text(text)
        code, _, err = run_in_process(algo, ["--evaluate", "1", "--chkpt-dir", str(tmp_path)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "holds a 'ppo' agent" in err or "corrupt checkpoint description" in err


# ---------------------------------------------------------------------------------------------------------
# Optimiser state in its parameter's layout: fused Adam pairs values by memory position
# ---------------------------------------------------------------------------------------------------------
def filled_agent(algo, seed=0):
    agent = algo.agent(8, 2, -np.ones(2), np.ones(2), fc1_dims=32, fc2_dims=32, batch_size=16, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(64):
        agent.remember(rng.normal(size=8), rng.uniform(-1, 1, 2), rng.normal(), rng.normal(size=8), False)
    return agent


@pytest.mark.parametrize("saved_row_major", [False, True])
def test_fused_adam_after_a_round_trip_equals_plain_adam_step_for_step(algo, tmp_path, saved_row_major):
    torch.manual_seed(0)
    agent = filled_agent(algo)
    for _ in range(5):
        agent.learn()
    if saved_row_major:  # the moments as a checkpoint from before the column-major input layers holds them
        for optimizer in (p for p in agent.parts().values() if isinstance(p, torch.optim.Optimizer)):
            for state in optimizer.state.values():
                for key, value in state.items():
                    if torch.is_tensor(value) and value.dim() == 2:
                        state[key] = value.contiguous()
    agent.save_models(tmp_path)
    fused, plain = filled_agent(algo, 1), filled_agent(algo, 1)
    fused.load_models(tmp_path)
    plain.load_models(tmp_path)
    for optimizer in (p for p in plain.parts().values() if isinstance(p, torch.optim.Optimizer)):
        for group in optimizer.param_groups:
            group["fused"], group["foreach"] = False, True  # the reference: Adam's plain, layout-blind form
    fused.memory, plain.memory = copy.deepcopy(agent.memory), copy.deepcopy(agent.memory)
    for step in range(10):
        with torch.random.fork_rng():
            fused.learn()
        plain.learn()
        for name, part in fused.parts().items():
            if isinstance(part, torch.nn.Module):
                for p, q in zip(part.parameters(), plain.parts()[name].parameters()):
                    assert torch.allclose(p, q, atol=1e-6), (step, name)


# ---------------------------------------------------------------------------------------------------------
# One training run per folder; --evaluate may read beside it and never meets a swap half done
# ---------------------------------------------------------------------------------------------------------
def folder_files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_training_run_on_the_folder_is_refused_and_evaluate_may_read(algo, tmp_path, capsys):
    """A real training process holds tmp/: a second training run, fresh or --resume, is refused in one line
    naming the folder and the process, with nothing in the folder moved or written; --evaluate reads best/
    meanwhile; once the process is killed, the folder is free (the OS dropped the lock)."""
    argv = ["--env", "Pendulum-v1", *algo.small, "--learning-starts", "100", *dirs(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-u", str(ROOT / algo.folder / f"{algo.script}.py"), *argv,
                             "--episodes", "1000", "--save-every", "1"], stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("episode    1 "):
                break
        os.kill(proc.pid, signal.SIGSTOP)  # frozen between two saves: its files stay as they are
        chkpt = tmp_path / "run" / "tmp"
        before = folder_files(tmp_path / "run")
        for mode in ([], ["--resume"]):
            code, out, err = run_in_process(algo, [*argv, "--episodes", "3", *mode], capsys)
            assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
            assert f"{chkpt} is in use by another training run (pid {proc.pid})" in err
        with pytest.raises(UsageError, match=f"pid {proc.pid}"):  # the lock itself, as begin() takes it
            locks.hold_run_lock(chkpt)
        assert folder_files(tmp_path / "run") == before
        os.kill(proc.pid, signal.SIGCONT)
        code, out, err = run_in_process(algo, ["--evaluate", "1", "--env", "Pendulum-v1", *dirs(tmp_path)], capsys)
        assert code == 0 and "mean score" in out, err
    finally:
        proc.kill()
        proc.wait()
    code, out, err = run_in_process(algo, ["--resume", "--episodes", "2", "--chkpt-dir", str(chkpt)], capsys)
    assert code == 0 and "resuming after episode" in out, err


class SlowSwap:
    """os.replace that pauses after renaming best/ to best.old/, the moment a reader would find no best/."""

    def __init__(self, real, started):
        self.real, self.started = real, started

    def __call__(self, src, dst):
        self.real(src, dst)
        if os.path.basename(src) == "best" and str(dst).endswith("best.old"):
            self.started.set()
            time.sleep(0.3)


def test_a_reader_waits_for_a_swap_in_progress(tmp_path, monkeypatch):
    sizes = dict(algorithm="parts", env="Pendulum-v1", input_dims=3, n_actions=1)
    folder = tmp_path / "best"
    checkpoints.save_agent(Parts(0), sizes, folder)
    started = threading.Event()
    monkeypatch.setattr(checkpoints.os, "replace", SlowSwap(os.replace, started))
    writer = threading.Thread(target=checkpoints.save_agent, args=(Parts(1), sizes, folder))
    writer.start()
    assert started.wait(10)
    assert not folder.exists()  # between the two renames
    loaded = checkpoints.load_agent(folder, sizes, lambda saved: Parts(7))
    writer.join()
    assert torch.equal(loaded.net.weight, Parts(1).net.weight)  # it waited, then read the new checkpoint


def test_a_crash_between_the_renames_still_reads_and_the_next_run_says_what_it_mended(algo, tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", *algo.small, *dirs(tmp_path)]
    assert run_in_process(algo, [*argv, "--episodes", "1"], capsys)[0] == 0
    chkpt = tmp_path / "run" / "tmp"
    (chkpt / "best").rename(chkpt / "best.old")  # killed between best/ -> best.old/ and best.new/ -> best/
    shutil.copytree(chkpt / "latest", chkpt / "latest.new")  # killed while writing latest.new/
    before = folder_files(chkpt)
    code, out, err = run_in_process(algo, ["--evaluate", "1", "--env", "Pendulum-v1", *dirs(tmp_path)], capsys)
    assert code == 0 and "mean score" in out, err
    assert folder_files(chkpt) == before  # reading changes nothing
    code, out, err = run_in_process(algo, [*argv, "--episodes", "2", "--resume"], capsys)
    assert code == 0, err
    assert f"put back {chkpt / 'best'} from best.old/" in out
    assert f"removed {chkpt / 'latest.new'}, left by a save that did not finish" in out
    assert not any(p.name.endswith((".new", ".old")) for p in chkpt.iterdir())


# ---------------------------------------------------------------------------------------------------------
# A write that fails: one line naming the file and the cause, exit 1, the last complete checkpoint kept
# ---------------------------------------------------------------------------------------------------------
def fail_second_write(monkeypatch, owner, method, target, error):
    """Patch owner.method (a writer whose first argument after self is the file written, or which writes to
    self) to raise `error` from its second call on a file for which target(file) holds."""
    real, calls = getattr(owner, method), []

    def write(self, *args, **kwargs):
        file = pathlib.Path(self if isinstance(self, pathlib.Path) else args[0])
        if target(file):
            calls.append(file)
            if len(calls) >= 2:
                raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, write)


def no_leftovers(*folders):
    return [p for folder in folders for p in folder.rglob("*") if p.name.endswith((".new", ".old")) or ".tmp" in p.name]


FAILURES = {  # what fails, the error, and how the message names the file
    "checkpoint": (errno.ENOSPC, "latest/actor.pt"),
    "csv": (errno.EACCES, "_Pendulum-v1.csv"),
    "plot": (errno.EIO, "_Pendulum-v1.png"),
}


@pytest.mark.parametrize("what", list(FAILURES))
def test_a_failed_write_is_one_line_naming_the_file_and_the_cause(algo, tmp_path, capsys, monkeypatch, what):
    """The second save of latest/ (episode 2, --save-every 1) fails writing a checkpoint file, the CSV or the
    curve: exit 1, one line, the checkpoint of episode 1 stays and resumes, no temporary file or folder is left."""
    import matplotlib.figure

    cause, path_end = FAILURES[what]
    curve = f".{algo.name}_Pendulum-v1."  # the temporary name of the curve's CSV and PNG
    owner, method, target = {
        "checkpoint": (pathlib.Path, "write_bytes", lambda f: f.parent.name == "latest.new" and ".actor." in f.name),
        "csv": (pathlib.Path, "write_text", lambda f: f.name.startswith(curve)),
        "plot": (matplotlib.figure.Figure, "savefig", lambda f: f.name.startswith(curve))}[what]
    fail_second_write(monkeypatch, owner, method, target, OSError(cause, os.strerror(cause)))
    argv = ["--env", "Pendulum-v1", *algo.small, "--save-every", "1", *dirs(tmp_path)]
    code, out, err = run_in_process(algo, [*argv, "--episodes", "4"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert path_end in err and f": {os.strerror(cause)}" in err and "Traceback" not in err
    if what == "checkpoint":
        assert f"cannot write {tmp_path / 'run' / 'tmp' / 'latest' / 'actor.pt'}: No space left on device (the " \
               f"last complete checkpoint in {tmp_path / 'run' / 'tmp' / 'latest'} is kept)" in err
    assert out.count("average score") == 1  # stopped in episode 2
    assert no_leftovers(tmp_path / "run") == []
    monkeypatch.undo()
    code, out, err = run_in_process(algo, [*argv, "--episodes", "3", "--resume"], capsys)
    assert code == 0 and ("resuming after episode 1 " if what == "checkpoint" else "resuming after episode 2 ") in out


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 kB file system (tmpfs, needs root), unmounted afterwards; the test skips where mount is refused."""
    disk = tmp_path / "disk"
    disk.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield disk
    locks.release_run_lock(disk / "tmp")  # held by the run that failed: the file system is busy until then
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_last_checkpoint(algo, tmp_path, tiny_disk, capsys):
    argv = ["--env", "Pendulum-v1", *algo.small, "--save-every", "1", "--chkpt-dir", str(tiny_disk / "tmp"),
            "--plot-dir", str(tmp_path / "plots")]
    code, out, err = run_in_process(algo, [*argv, "--episodes", "5"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"error: cannot write {tiny_disk / 'tmp'}/" in err and ": No space left on device" in err
    assert "Traceback" not in err and "RuntimeError" not in err
    assert no_leftovers(tiny_disk) == []
    # what is left loads: best/ evaluates
    code, out, err = run_in_process(algo, ["--evaluate", "1", *argv[:2], *argv[-4:]], capsys)
    assert code == 0 and "mean score" in out, err

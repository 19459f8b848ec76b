"""No lost training: complete atomic checkpoints, --resume, SIGKILL at any moment, and the checkpoint bad inputs.

Each test runs once per algorithm (the `algo` fixture in conftest.py).
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import ROOT, dirs, read_scores, run_in_process

# LunarLander with small networks: random-action episodes of about 100 steps, learning from step 300 on
LANDER = ["--fc1-dims", "32", "--fc2-dims", "32", "--batch-size", "32", "--learning-starts", "300", "--threads", "1"]


def csv_rows(csv_file):
    """The CSV without its minutes column (wall-clock time differs between runs)."""
    rows = np.loadtxt(csv_file, delimiter=",", skiprows=1, ndmin=2)
    return np.delete(rows, 4 if csv_file.name.endswith("-v2.csv") else [], axis=1)


def test_resume_with_saved_buffer_gives_the_scores_of_an_uninterrupted_run(algo, tmp_path, capsys):
    whole = ["--episodes", "8", "--save-buffer", *LANDER]
    assert run_in_process(algo, [*whole, *dirs(tmp_path, "whole")], capsys)[0] == 0
    code, _, err = run_in_process(algo, ["--episodes", "4", "--save-buffer", *LANDER, *dirs(tmp_path, "split")],
                                  capsys)
    assert code == 0, err
    chkpt = tmp_path / "split" / "tmp"
    assert (chkpt / "latest" / "buffer.pt").is_file() and (chkpt / "latest" / "training_state.pt").is_file()
    # --resume takes the saved run's flags (and its --plot-dir); only the run's length is given anew
    code, out, err = run_in_process(algo, ["--resume", "--episodes", "8", "--chkpt-dir", str(chkpt)], capsys)
    assert code == 0, err
    assert "resuming after episode 4" in out and "episode    5 score" in out and "episode    4 score" not in out
    env = "LunarLanderContinuous-v2"
    for name in (f"{algo.name}_{env}.csv", f"{algo.name}_{env}_q_bias.csv"):
        whole_rows = csv_rows(tmp_path / "whole" / "plots" / name)
        split_rows = csv_rows(tmp_path / "split" / "plots" / name)
        assert np.array_equal(whole_rows, split_rows), name
    assert len(read_scores(tmp_path / "split" / "plots" / f"{algo.name}_{env}.csv")) == 8
    # the networks end bit-identical too
    for part in ("actor.pt", "target_actor.pt" if algo.name == "ddpg" else "target_critic_2.pt"):
        a = torch.load(tmp_path / "whole" / "tmp" / "latest" / part, weights_only=True)
        b = torch.load(chkpt / "latest" / part, weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_a_saved_buffer_continues_the_count(algo, tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", *algo.small, *dirs(tmp_path)]
    assert run_in_process(algo, [*argv, "--episodes", "2"], capsys)[0] == 0
    code, out, err = run_in_process(algo, [*argv, "--episodes", "3", "--resume"], capsys)
    assert code == 0, err
    assert "resuming after episode 2 and 400 env steps" in out and "3 episodes, 600 env steps" in out
    assert len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")) == 3
    assert not (tmp_path / "run" / "tmp" / "previous").exists()  # a resumed run moves nothing away


def test_resume_refuses_changed_algorithm_flags(algo, tmp_path, capsys):
    argv = [*algo.small, *dirs(tmp_path)]
    assert run_in_process(algo, ["--env", "Pendulum-v1", "--max-steps", "50", *argv], capsys)[0] == 0
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    for flags, message in ((["--gamma", "0.9"], "--gamma 0.9 differs from the resumed run's 0.99"),
                           (["--env", "LunarLanderContinuous-v2"], "--env LunarLanderContinuous-v2 differs from "
                                                                   "the resumed run's Pendulum-v1")):
        code, out, err = run_in_process(algo, ["--resume", *flags, *argv], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


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
    for mode in (["--evaluate", "1"], ["--resume", "--episodes", "2"]):
        code, out, err = run_in_process(algo, [*argv, *mode], capsys)
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
    code, _, err = run_in_process(algo, [*argv, "--evaluate", "1"], capsys)
    assert code == 2 and "observation/action sizes (8, 2), Pendulum-v1 has (3, 1)" in err


def test_an_unwritable_results_folder_is_reported_before_training(algo, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for flag in ("--plot-dir", "--chkpt-dir"):
        argv = ["--env", "Pendulum-v1", *algo.small, *dirs(tmp_path), flag, str(blocker / "sub")]
        code, out, err = run_in_process(algo, argv, capsys)
        assert code == 2 and f"cannot write to {blocker / 'sub'}" in err and "episode" not in out
    assert not (tmp_path / "run" / "tmp" / "best").exists()


# ---------------------------------------------------------------------------------------------------------
# SIGKILL: whatever the moment, what is on disk evaluates and resumes
# ---------------------------------------------------------------------------------------------------------
def test_an_interrupted_save_is_recovered(algo, tmp_path):
    utils = algo.utils
    latest = tmp_path / "latest"
    # killed between the two renames: only latest.old/ (complete) and latest.new/ are left
    (tmp_path / "latest.old").mkdir()
    (tmp_path / "latest.old" / "agent.json").write_text("{}")
    (tmp_path / "latest.new").mkdir()
    utils.recover_checkpoint(latest)
    assert (latest / "agent.json").read_text() == "{}"
    assert not (tmp_path / "latest.old").exists() and not (tmp_path / "latest.new").exists()
    # killed while writing latest.new/: it is dropped, latest/ stays
    (tmp_path / "latest.new").mkdir()
    (tmp_path / "latest.new" / "actor.pt").write_bytes(b"half")
    utils.recover_checkpoint(latest)
    assert not (tmp_path / "latest.new").exists() and (latest / "agent.json").is_file()


def start(algo, tmp_path, *flags):
    return subprocess.Popen([sys.executable, "-u", str(ROOT / algo.folder / f"{algo.script}.py"), "--env",
                             "Pendulum-v1", "--episodes", "1000", "--save-every", "1", "--save-buffer",
                             "--fc1-dims", "400", "--fc2-dims", "300", "--batch-size", "32", "--learning-starts",
                             "100", "--threads", "1", *dirs(tmp_path), *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_script(algo, tmp_path, *flags):
    return subprocess.run([sys.executable, str(ROOT / algo.folder / f"{algo.script}.py"), "--env", "Pendulum-v1",
                           *dirs(tmp_path), *flags], capture_output=True, text=True, timeout=300)


def kill_while_saving(proc, latest_new, timeout=120):
    """SIGKILL `proc` the moment it starts writing latest.new/ (a checkpoint in progress)."""
    deadline = time.monotonic() + timeout
    while not latest_new.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.0002)
    proc.kill()
    proc.wait()


def test_sigkill_mid_episode_and_mid_save_loses_at_most_the_current_episode(algo, tmp_path):
    chkpt = tmp_path / "run" / "tmp"
    # 1. killed in the middle of its third episode: episodes 1 and 2 were saved and resume from there
    proc = start(algo, tmp_path)
    lines = []
    while len(lines) < 2:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        lines += [line] if line.startswith("episode") else []
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    scores_before = [float(line.split()[3]) for line in lines]
    result = run_script(algo, tmp_path, "--resume", "--episodes", "4")
    assert result.returncode == 0, result.stderr
    assert "resuming after episode" in result.stdout
    scores = read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")
    assert len(scores) == 4 and np.allclose(scores[:2], scores_before, atol=0.05)

    # 2. killed while a checkpoint is being written, a few times: the last complete one always loads
    interrupted = 0
    for _ in range(6):
        proc = start(algo, tmp_path, "--resume", "--episodes", "1000")
        kill_while_saving(proc, chkpt / "latest.new")
        interrupted += (chkpt / "latest.new").exists() or (chkpt / "latest.old").exists()
        if interrupted >= 2:
            break
    assert interrupted >= 1  # at least one kill landed inside a save
    evaluation = run_script(algo, tmp_path, "--evaluate", "1")
    assert evaluation.returncode == 0, evaluation.stderr
    done = len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv"))
    result = run_script(algo, tmp_path, "--resume", "--episodes", "12")
    assert result.returncode == 0, result.stderr
    assert "12 episodes" in result.stdout
    assert len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")) == 12 > done
    assert not any(p.name.endswith((".new", ".old")) or ".tmp" in p.name for p in chkpt.rglob("*"))

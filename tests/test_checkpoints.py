"""rlharness.files and rlharness.checkpoints: atomic saves, damaged and pickled files refused in one line, an
interrupted save recovered, saved sizes checked, unwritable folders, an earlier run kept in previous/.

The end-to-end tests run once per algorithm (the `algo` fixture in conftest.py).
"""
import json
import os
import types

import pytest
import torch

from rlharness import checkpoints, files
from rlharness.errors import UsageError

from conftest import dirs, run_in_process


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
    sizes = dict(env="Pendulum-v1", input_dims=3, n_actions=1)
    folder = tmp_path / "best"
    for seed in (0, 1):
        checkpoints.save_agent(Parts(seed), sizes, folder, extra={"note.pt": {"seed": seed}})
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["agent.json", "best", "net.pt", "note.pt"]
    assert json.loads((folder / "agent.json").read_text()) == sizes
    assert files.load_checkpoint(folder / "note.pt") == {"seed": 1}
    env = types.SimpleNamespace(observation_space=types.SimpleNamespace(shape=(3,)),
                                action_space=types.SimpleNamespace(shape=(1,)))
    loaded = checkpoints.load_agent(folder, "Pendulum-v1", env, lambda saved: Parts(7))
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

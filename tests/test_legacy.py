"""What the code before rlharness saved still loads, and resumes to the numbers that code gave.

Until each random stream got a seed of its own, a run from scratch with these flags also gave exactly these
numbers (the move to rlharness changed none); the streams changed every run's numbers on purpose, so only a
resumed run, which restores the saved generators, reproduces them now.

tests/data/v1/<algo>/ holds what the code before the move wrote: best/ and latest/ (with buffer.pt and a version-1
training state) after 3 episodes of the LEGACY flags, and the CSVs of 6 episodes of the same flags run from
scratch. Columns 1-4 of the scores CSV are deterministic (the 5th, minutes, is wall-clock); the critic record and
SAC's alpha record are deterministic throughout. The saved config holds the paths of the machine that wrote it,
so every run here names --chkpt-dir and --plot-dir, in a copy under tmp_path (tests/data is never written).
"""
import shutil

import torch

from conftest import DATA, csv_rows, run_in_process

LEGACY = ["--fc1-dims", "32", "--fc2-dims", "32", "--batch-size", "32", "--learning-starts", "200", "--threads", "1",
          "--seed", "3", "--buffer-size", "20000", "--save-buffer", "--save-every", "1"]
ENV = "LunarLanderContinuous-v2"


def records(algo):
    """(file written by the run, file of the code before the move) for each CSV the 6-episode run writes."""
    pairs = [(f"{algo}_{ENV}.csv", "scores_6_episodes.csv"), (f"{algo}_{ENV}_q_bias.csv", "q_bias_6_episodes.csv")]
    return pairs + ([(f"sac_{ENV}_alpha.csv", "alpha_6_episodes.csv")] if algo == "sac" else [])


def assert_same_numbers(algo, plots):
    for written, before in records(algo):
        assert csv_rows(plots / written) == csv_rows(DATA / "v1" / algo / before), written
    assert len(csv_rows(plots / f"{algo}_{ENV}.csv")) == 7  # a header and 6 episodes


def v1_copy(algo, tmp_path):
    chkpt = tmp_path / "v1"
    shutil.copytree(DATA / "v1" / algo, chkpt)
    return chkpt


def test_resuming_a_version_1_checkpoint_gives_the_same_numbers(algo, tmp_path, capsys):
    chkpt = v1_copy(algo.name, tmp_path)
    assert torch.load(chkpt / "latest" / "training_state.pt", weights_only=True)["version"] == 1
    plots = tmp_path / "plots"
    code, out, err = run_in_process(algo, ["--resume", "--episodes", "6", "--chkpt-dir", str(chkpt),
                                           "--plot-dir", str(plots)], capsys)
    assert code == 0, err
    assert "resuming after episode 3" in out and "episode    4 score" in out
    assert_same_numbers(algo.name, plots)
    state = torch.load(chkpt / "latest" / "training_state.pt", weights_only=True)
    assert state["version"] == 2 and "alpha" not in state  # saved again in the new layout
    assert set(state["records"]) == ({"alpha"} if algo.name == "sac" else set())
    assert [r["episode"] for r in state["q_bias"]] == [1, 5]  # version 1's record carried over


def test_evaluating_a_version_1_best_agent(algo, tmp_path, capsys):
    chkpt = v1_copy(algo.name, tmp_path)
    code, out, err = run_in_process(algo, ["--evaluate", "2", "--chkpt-dir", str(chkpt), "--plot-dir",
                                           str(tmp_path / "plots")], capsys)
    assert code == 0, err
    assert out.count("evaluation episode") == 2
    assert out.splitlines()[-1].startswith("mean score ") and out.splitlines()[-1].endswith(" over 2 episodes")

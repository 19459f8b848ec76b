"""main_ddpg.py end to end: files written, seeding, terminal vs truncated, bad input, and that it learns."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT

SMALL = ["--fc1-dims", "64", "--fc2-dims", "64", "--batch-size", "64", "--threads", "1"]


def run_in_process(ddpg, argv, capsys):
    """Run main_ddpg as `python main_ddpg.py argv` would, returning (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        ddpg.utils.run_main(ddpg.main_ddpg.main, argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def read_scores(csv_file):
    return np.loadtxt(csv_file, delimiter=",", skiprows=1, ndmin=2)[:, 2]


def test_script_from_inside_its_folder_writes_checkpoint_plot_and_csv(tmp_path):
    """`cd DDPG && python main_ddpg.py --episodes 3` uses the repository's tmp/ and plots/ (here a copy)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "DDPG", repo / "DDPG", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "main_ddpg.py", "--episodes", "3", *SMALL], cwd=repo / "DDPG",
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("average score") == 3
    for folder in ("best", "latest"):
        for name in ("actor", "critic", "target_actor", "target_critic"):
            assert (repo / "tmp" / "ddpg" / folder / f"{name}.pt").stat().st_size > 0
    png = repo / "plots" / "ddpg_LunarLanderContinuous-v2.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = read_scores(png.with_suffix(".csv"))
    assert len(scores) == 3
    assert "Traceback" not in result.stderr

    evaluation = subprocess.run([sys.executable, "DDPG/main_ddpg.py", "--evaluate", "2"], cwd=repo,
                                capture_output=True, text=True, timeout=300)
    assert evaluation.returncode == 0, evaluation.stderr
    assert evaluation.stdout.count("evaluation episode") == 2 and "mean score" in evaluation.stdout


def test_same_seed_same_scores(ddpg, tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", "--episodes", "3", "--seed", "5", *SMALL]
    curves = []
    for run in ("a", "b", "c"):
        seed = ["--seed", "6"] if run == "c" else []
        code, _, err = run_in_process(ddpg, [*argv, *seed, "--chkpt-dir", str(tmp_path / run),
                                             "--plot-dir", str(tmp_path / run)], capsys)
        assert code == 0, err
        curves.append(read_scores(tmp_path / run / "ddpg_Pendulum-v1.csv"))
    assert np.array_equal(curves[0], curves[1])
    assert not np.array_equal(curves[0], curves[2])


def test_truncation_is_stored_as_not_terminal(ddpg, tmp_path, capsys, monkeypatch):
    stored = []
    real_remember = ddpg.ddpg_torch.Agent.remember

    def spy(self, state, action, reward, state_, done):
        stored.append(done)
        real_remember(self, state, action, reward, state_, done)

    monkeypatch.setattr(ddpg.ddpg_torch.Agent, "remember", spy)
    # Pendulum-v1 never terminates: its 200-step episodes end by the time limit only
    run_in_process(ddpg, ["--env", "Pendulum-v1", "--episodes", "1", *SMALL, "--chkpt-dir", str(tmp_path),
                          "--plot-dir", str(tmp_path)], capsys)
    assert len(stored) == 200 and not any(stored)
    stored.clear()
    # A lander flying random actions crashes: the last transition of each episode is terminal
    run_in_process(ddpg, ["--episodes", "2", "--learning-starts", "100000", *SMALL, "--chkpt-dir",
                          str(tmp_path), "--plot-dir", str(tmp_path)], capsys)
    assert sum(stored) == 2 and stored[-1] is True


def test_step_budget_ending_mid_episode_still_saves(ddpg, tmp_path, capsys):
    code, out, err = run_in_process(ddpg, ["--max-steps", "30", *SMALL, "--chkpt-dir", str(tmp_path / "c"),
                                           "--plot-dir", str(tmp_path / "p")], capsys)
    assert code == 0, err
    assert (tmp_path / "c" / "latest" / "actor.pt").is_file()
    assert "0 episodes, 30 env steps" in out


def test_ddpg_learns_pendulum(ddpg, tmp_path, capsys):
    """8,000 steps lift the return by over 700 (seeds 0, 1, 2 gave 1310, 1039 and 1169)."""
    code, _, err = run_in_process(ddpg, ["--env", "Pendulum-v1", "--episodes", "40", *SMALL,
                                         "--chkpt-dir", str(tmp_path), "--plot-dir", str(tmp_path)], capsys)
    assert code == 0, err
    scores = read_scores(tmp_path / "ddpg_Pendulum-v1.csv")
    assert len(scores) == 40
    assert scores[-8:].mean() - scores[:5].mean() > 700


BAD_INPUT = [
    (["--env", "NoSuchEnv-v0"], "unknown environment id 'NoSuchEnv-v0'"),
    (["--env", "CartPole-v1"], "Discrete action space"),
    (["--batch-size", "0"], "--batch-size must be > 0, got 0"),
    (["--episodes", "-3"], "--episodes must be > 0, got -3"),
    (["--tau", "0"], "--tau must be in (0, 1], got 0.0"),
    (["--tau", "1.5"], "--tau must be in (0, 1], got 1.5"),
    (["--gamma", "0"], "--gamma must be in (0, 1], got 0.0"),
    (["--gamma", "1.01"], "--gamma must be in (0, 1], got 1.01"),
    (["--lr-actor=-1e-3"], "--lr-actor must be > 0, got -0.001"),
    (["--lr-critic", "0"], "--lr-critic must be > 0, got 0.0"),
    (["--batch-size", "ten"], "invalid int value: 'ten'"),
    (["--noise", "pink"], "invalid choice: 'pink'"),
    (["--evaluate", "3"], "no saved agent"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(ddpg, tmp_path, capsys, argv, message):
    chkpt = tmp_path / "tmp" / "ddpg"
    (chkpt / "latest").mkdir(parents=True)
    sentinel = chkpt / "latest" / "actor.pt"
    sentinel.write_bytes(b"an earlier run's agent")
    code, out, err = run_in_process(ddpg, [*argv, "--chkpt-dir", str(chkpt), "--plot-dir", str(tmp_path / "p")],
                                    capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert sentinel.read_bytes() == b"an earlier run's agent"
    assert sorted(p.name for p in chkpt.rglob("*")) == ["actor.pt", "latest"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(ddpg, tmp_path, capsys):
    code, _, err = run_in_process(ddpg, ["--device", "cuda", "--chkpt-dir", str(tmp_path)], capsys)
    assert code == 2 and "no CUDA device" in err


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "DDPG" / "main_ddpg.py"), "--env", "NoSuchEnv-v0",
                             "--chkpt-dir", str(tmp_path), "--plot-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("main_ddpg.py: error: unknown environment id")
    assert not list(tmp_path.iterdir())

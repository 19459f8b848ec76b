"""main_ddpg.py and main_sac.py end to end: files written, seeding, terminal vs truncated, bad input, learning.

Each test runs once per algorithm (the `algo` fixture); the scripts share their flags where they mean the same.
"""
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, dirs, read_scores, run_in_process


def test_script_from_inside_its_folder_writes_checkpoint_plot_and_csv(algo, tmp_path):
    """`cd DDPG && python main_ddpg.py --episodes 3` uses the repository's tmp/ and plots/ (here a copy)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / algo.folder, repo / algo.folder, ignore=shutil.ignore_patterns("__pycache__", "*.TXT"))
    result = subprocess.run([sys.executable, f"{algo.script}.py", "--episodes", "3", *algo.small],
                            cwd=repo / algo.folder, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("average score") == 3
    for folder in ("best", "latest"):
        assert (repo / "tmp" / algo.name / folder / "actor.pt").stat().st_size > 0
        assert (repo / "tmp" / algo.name / folder / "agent.json").is_file()
    png = repo / "plots" / f"{algo.name}_LunarLanderContinuous-v2.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(read_scores(png.with_suffix(".csv"))) == 3
    assert "Traceback" not in result.stderr

    evaluation = subprocess.run([sys.executable, f"{algo.folder}/{algo.script}.py", "--evaluate", "2"], cwd=repo,
                                capture_output=True, text=True, timeout=300)
    assert evaluation.returncode == 0, evaluation.stderr
    assert evaluation.stdout.count("evaluation episode") == 2 and "mean score" in evaluation.stdout


def test_same_seed_same_scores(algo, tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", "--episodes", "4", *algo.small, "--learning-starts", "300"]
    curves = []
    for run, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        code, _, err = run_in_process(algo, [*argv, "--seed", seed, *dirs(tmp_path, run)], capsys)
        assert code == 0, err
        curves.append(read_scores(tmp_path / run / "plots" / f"{algo.name}_Pendulum-v1.csv"))
    assert np.array_equal(curves[0], curves[1])
    assert not np.array_equal(curves[0], curves[2])


def test_truncation_is_stored_as_not_terminal(algo, tmp_path, capsys, monkeypatch):
    stored = []
    real_remember = algo.agent.remember

    def spy(self, state, action, reward, state_, done):
        stored.append(done)
        real_remember(self, state, action, reward, state_, done)

    monkeypatch.setattr(algo.agent, "remember", spy)
    # Pendulum-v1 never terminates: its 200-step episodes end by the time limit only
    run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "1", *algo.small, *dirs(tmp_path)], capsys)
    assert len(stored) == 200 and not any(stored)
    stored.clear()
    # A lander flying random actions crashes: the last transition of each episode is terminal
    run_in_process(algo, [*algo.small, "--episodes", "2", "--learning-starts", "100000", *dirs(tmp_path)], capsys)
    assert sum(stored) == 2 and stored[-1] is True


def test_step_budget_ending_mid_episode_still_saves(algo, tmp_path, capsys):
    code, out, err = run_in_process(algo, ["--max-steps", "30", *algo.small, *dirs(tmp_path)], capsys)
    assert code == 0, err
    assert (tmp_path / "run" / "tmp" / "latest" / "actor.pt").is_file()
    assert "0 episodes, 30 env steps" in out


# episodes, and the least gain of the last 8 episodes' mean over the first 5 episodes' mean, for every seed tried
LEARNING = {"ddpg": (40, 700, ["--lr-actor", "1e-3"]),  # 8,000 steps; seeds 0, 1, 2 gained 1290, 990, 1098
            "sac": (40, 700, ["--learning-starts", "1000", "--lr-actor", "1e-3", "--lr-critic", "1e-3",
                              "--lr-alpha", "1e-3"])}  # 8,000 steps; seeds 0, 1, 2 gained 1050, 931, 972


def test_learns_pendulum(algo, tmp_path, capsys):
    episodes, gain, flags = LEARNING[algo.name]
    code, _, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", str(episodes), *algo.small, *flags,
                                         *dirs(tmp_path)], capsys)
    assert code == 0, err
    scores = read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")
    assert len(scores) == episodes
    assert scores[-8:].mean() - scores[:5].mean() > gain


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
    (["--evaluate", "3"], "no saved agent"),
    (["--resume"], "no run to resume in"),
    (["--resume", "--evaluate", "2"], "use one of them"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
]
ONLY = {"sac": [(["--alpha", "0"], "--alpha must be 'auto' or a number > 0, got 0"),
                (["--alpha=-0.2"], "--alpha must be 'auto' or a number > 0, got -0.2"),
                (["--update-every", "0"], "--update-every must be > 0, got 0")],
        "ddpg": [(["--noise", "pink"], "invalid choice: 'pink'"),
                 (["--sigma", "0"], "--sigma must be > 0, got 0.0")]}


def check_bad_input(algo, tmp_path, capsys, argv, message):
    """One line on stderr naming the problem, exit code 2, and the earlier run's files untouched."""
    chkpt = tmp_path / "tmp"
    (chkpt / "latest").mkdir(parents=True, exist_ok=True)
    sentinel = chkpt / "latest" / "actor.pt"
    sentinel.write_bytes(b"an earlier run's agent")
    code, out, err = run_in_process(algo, [*argv, "--chkpt-dir", str(chkpt), "--plot-dir", str(tmp_path / "p")],
                                    capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert sentinel.read_bytes() == b"an earlier run's agent"
    assert sorted(p.name for p in chkpt.rglob("*")) == ["actor.pt", "latest"]


@pytest.mark.parametrize("argv,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(algo, tmp_path, capsys, argv, message):
    check_bad_input(algo, tmp_path, capsys, argv, message)


def test_bad_values_of_the_algorithms_own_flags(algo, tmp_path, capsys):
    for argv, message in ONLY[algo.name]:
        check_bad_input(algo, tmp_path, capsys, argv, message)


def test_evaluate_refuses_an_agent_saved_for_another_env(algo, tmp_path, capsys):
    code, _, err = run_in_process(algo, ["--env", "Pendulum-v1", "--max-steps", "10", *algo.small,
                                         *dirs(tmp_path)], capsys)
    assert code == 0, err
    (tmp_path / "run" / "tmp" / "latest").rename(tmp_path / "run" / "tmp" / "best")
    code, _, err = run_in_process(algo, ["--evaluate", "1", *dirs(tmp_path)], capsys)
    assert code == 2 and "was trained on Pendulum-v1, not LunarLanderContinuous-v2" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(algo, tmp_path, capsys):
    code, _, err = run_in_process(algo, ["--device", "cuda", *dirs(tmp_path)], capsys)
    assert code == 2 and "no CUDA device" in err


def test_bad_input_in_a_real_process_prints_no_traceback(algo, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / algo.folder / f"{algo.script}.py"), "--env",
                             "NoSuchEnv-v0", *dirs(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{algo.script}.py: error: unknown environment id")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("signum,ignore_sigint", [(signal.SIGINT, False), (signal.SIGTERM, False),
                                                  (signal.SIGINT, True)],
                         ids=["ctrl-c", "sigterm", "ctrl-c-background"])
def test_signal_saves_plots_and_exits_cleanly(algo, tmp_path, signum, ignore_sigint):
    """Ctrl-C or SIGTERM mid-run: the run saves latest/, writes the curve and CSV, and exits 0.

    ctrl-c-background starts the run with SIGINT ignored, as a shell does for `cmd &` in a script.
    """
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    proc = subprocess.Popen([sys.executable, "-u", str(ROOT / algo.folder / f"{algo.script}.py"), "--env",
                             "Pendulum-v1", "--episodes", "1000", *algo.small, *dirs(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec)
    finished = 0
    while finished < 2:  # wait for two finished episodes
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        finished += line.startswith("episode")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"stopped by {signal.Signals(signum).name}" in out and "Traceback" not in err
    assert (tmp_path / "run" / "tmp" / "latest" / "actor.pt").is_file()
    assert len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")) >= 2


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


def test_latest_is_saved_every_few_episodes(algo, tmp_path, capsys, monkeypatch):
    saves = []
    real_save = algo.utils.save_agent
    monkeypatch.setattr(algo.utils, "save_agent", lambda agent, sizes, folder, extra=None:
                        saves.append(folder.name) or real_save(agent, sizes, folder, extra))
    code, _, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "5", "--save-every", "2",
                                         *algo.small, *dirs(tmp_path)], capsys)
    assert code == 0, err
    assert saves.count("latest") == 3  # after episodes 2 and 4, and at the end


def test_evaluate_records_a_gif_and_render_needs_a_display(algo, tmp_path, capsys, monkeypatch):
    from PIL import Image

    argv = ["--env", "Pendulum-v1", *algo.small, *dirs(tmp_path)]
    assert run_in_process(algo, [*argv, "--episodes", "1"], capsys)[0] == 0
    code, out, err = run_in_process(algo, [*argv, "--evaluate", "2", "--gif"], capsys)
    assert code == 0, err
    gif = tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.gif"
    assert f"first episode (201 frames) recorded in {gif}" in out  # reset plus 200 steps
    with Image.open(gif) as image:
        assert 10 <= image.n_frames <= 151 and image.size[0] == 400
    assert gif.stat().st_size < 5e6
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = run_in_process(algo, [*argv, "--evaluate", "1", "--render"], capsys)
    assert code == 2 and "--render needs a display" in err


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(algo, tmp_path, capsys, monkeypatch):
    real_learn, calls = algo.agent.learn, []

    def learn(self):
        losses = real_learn(self)
        calls.append(1)
        if losses is not None and len(calls) > 300:  # diverge during the second Pendulum episode
            return tuple(torch.full_like(loss, float("nan")) for loss in losses)
        return losses

    monkeypatch.setattr(algo.agent, "learn", learn)
    code, out, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "5", *algo.small,
                                           "--learning-starts", "64", *dirs(tmp_path)], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        f"error: a loss became NaN or inf in episode 2 (env step 400); the last good checkpoints in "
        f"{tmp_path / 'run' / 'tmp'} are kept")
    assert out.count("average score") == 1  # the first episode only
    best = tmp_path / "run" / "tmp" / "best"
    assert (best / "actor.pt").is_file() and not (tmp_path / "run" / "tmp" / "latest").exists()

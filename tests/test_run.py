"""rlharness.run: no lost training. --resume, latest/ (and the curve) every few episodes, Ctrl-C, SIGTERM and
SIGHUP (a closed terminal), SIGKILL at any moment, and a NaN loss stopping the run before it saves.

Each test runs once per algorithm (the `algo` fixture in conftest.py).
"""
import os
import pty
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import rlharness.run

from conftest import ROOT, csv_rows, dirs, read_scores, run_in_process

# LunarLander with small networks: random-action episodes of about 100 steps, learning from step 300 on
LANDER = ["--fc1-dims", "32", "--fc2-dims", "32", "--batch-size", "32", "--learning-starts", "300", "--threads", "1"]


# ---------------------------------------------------------------------------------------------------------
# --resume and latest/
# ---------------------------------------------------------------------------------------------------------
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
    names = [f"{algo.name}_{env}.csv", f"{algo.name}_{env}_q_bias.csv"]
    names += [f"sac_{env}_alpha.csv"] if algo.name == "sac" else []
    for name in names:
        assert csv_rows(tmp_path / "whole" / "plots" / name) == csv_rows(tmp_path / "split" / "plots" / name), name
    assert len(read_scores(tmp_path / "split" / "plots" / f"{algo.name}_{env}.csv")) == 8
    # the networks end bit-identical too
    for part in ("actor.pt", "target_actor.pt" if algo.name == "ddpg" else "target_critic_2.pt"):
        a = torch.load(tmp_path / "whole" / "tmp" / "latest" / part, weights_only=True)
        b = torch.load(chkpt / "latest" / part, weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(chkpt / "latest" / "training_state.pt", weights_only=True)
    assert state["version"] == 2 and set(state["records"]) == ({"alpha"} if algo.name == "sac" else set())


def test_resume_without_a_saved_buffer_continues_the_count(algo, tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", *algo.small, *dirs(tmp_path)]
    assert run_in_process(algo, [*argv, "--episodes", "2"], capsys)[0] == 0
    code, out, err = run_in_process(algo, [*argv, "--episodes", "3", "--resume"], capsys)
    assert code == 0, err
    assert "resuming after episode 2 and 400 env steps" in out and "3 episodes, 600 env steps" in out
    assert len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")) == 3
    assert not (tmp_path / "run" / "tmp" / "previous").exists()  # a resumed run moves nothing away


def test_latest_is_saved_every_few_episodes(algo, tmp_path, capsys, monkeypatch):
    saves = []
    real_save = rlharness.run.save_agent
    monkeypatch.setattr(rlharness.run, "save_agent", lambda agent, sizes, folder, extra=None:
                        saves.append(folder.name) or real_save(agent, sizes, folder, extra))
    code, _, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "5", "--save-every", "2",
                                         *algo.small, *dirs(tmp_path)], capsys)
    assert code == 0, err
    assert saves.count("latest") == 3  # after episodes 2 and 4, and at the end


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


# ---------------------------------------------------------------------------------------------------------
# Signals: Ctrl-C, SIGTERM and SIGHUP stop cleanly; SIGKILL at any moment leaves what evaluates and resumes
# ---------------------------------------------------------------------------------------------------------
SIGNALS = {"ctrl-c": (signal.SIGINT, False), "sigterm": (signal.SIGTERM, False), "sighup": (signal.SIGHUP, False),
           "ctrl-c-background": (signal.SIGINT, True)}


@pytest.mark.parametrize("case", list(SIGNALS))
def test_signal_mid_episode_saves_plots_and_exits_cleanly(algo, tmp_path, capsys, monkeypatch, case):
    """Ctrl-C or SIGTERM in the middle of an episode: the run finishes the step, saves latest/ (as before that
    episode), writes the curve and the CSVs, and exits 0. The signal is sent to this process from inside the
    run, at its 450th env step.

    ctrl-c-background starts the run with SIGINT ignored, as a shell does for `cmd &` in a script.
    """
    signum, ignore_sigint = SIGNALS[case]
    real_remember, stored = algo.agent.remember, []

    def remember(self, *transition):
        real_remember(self, *transition)
        stored.append(1)
        if len(stored) == 450:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(algo.agent, "remember", remember)
    sigterm_handler = signal.getsignal(signal.SIGTERM)
    sigint_handler = signal.SIG_IGN if ignore_sigint else signal.default_int_handler
    previous = signal.signal(signal.SIGINT, sigint_handler)
    try:
        code, out, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "1000", *algo.small,
                                               "--learning-starts", "300", *dirs(tmp_path)], capsys)
        assert signal.getsignal(signal.SIGINT) == sigint_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 0 and err == ""
    assert f"stopped by {signal.Signals(signum).name} after 450 env steps: saving" in out
    assert signal.getsignal(signal.SIGTERM) == sigterm_handler  # the run put back the handlers it replaced
    # latest/ holds the run as it was before the cut episode (--resume plays it again), which has no score
    assert "stopped in episode 3: latest/ holds the run as it was before it, after 400 env steps" in out
    state = torch.load(tmp_path / "run" / "tmp" / "latest" / "training_state.pt", weights_only=True)
    assert state["total_steps"] == 400 and len(state["scores"]) == 2
    assert len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")) == 2
    assert (tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.png").is_file()


def test_ctrl_c_to_a_background_process_stops_it_cleanly(algo, tmp_path):
    """The same in a real process started with SIGINT ignored, as a shell starts `cmd &` in a script."""
    proc = subprocess.Popen([sys.executable, "-u", str(ROOT / algo.folder / f"{algo.script}.py"), "--env",
                             "Pendulum-v1", "--episodes", "1000", *algo.small, "--learning-starts", "300",
                             *dirs(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    finished = 0
    while finished < 2:  # wait for two finished episodes: the agent is learning from the second on
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        finished += line.startswith("episode")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped by SIGINT" in out and "Traceback" not in err
    assert (tmp_path / "run" / "tmp" / "latest" / "actor.pt").is_file()
    assert len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")) >= 2


def script(algo, tmp_path, *flags):
    """The command line of a small Pendulum run that would go on for 1000 episodes, of random actions (fast)."""
    return [sys.executable, "-u", str(ROOT / algo.folder / f"{algo.script}.py"), "--env", "Pendulum-v1", "--episodes",
            "1000", *algo.small, "--learning-starts", "200000", *dirs(tmp_path), *flags]


def read_until_episode(read_line, n):
    """Read output lines until episode n has been printed (its saves, made before the print, are on disk)."""
    while True:
        line = read_line()
        assert line, "the run ended early"
        if line.startswith(f"episode {n:4d} "):
            return


def test_a_closed_terminal_stops_the_run_cleanly(algo, tmp_path):
    """A real run on a terminal (a pseudo-terminal) that closes: the kernel sends SIGHUP, and the run's prints
    then fail (EIO). The run finishes the step, saves latest/, writes the CSV and curve, and exits 0. With
    --save-every 1000 nothing is saved before the stop, so what is on disk was written after the hang-up."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: becomes the run, on the terminal
        try:
            os.execv(sys.executable, script(algo, tmp_path, "--save-every", "1000"))
        finally:
            os._exit(127)
    with os.fdopen(terminal, "r", errors="replace") as lines:
        read_until_episode(lines.readline, 2)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    state = torch.load(tmp_path / "run" / "tmp" / "latest" / "training_state.pt", weights_only=True)
    assert len(state["scores"]) >= 2
    plots = tmp_path / "run" / "plots"
    assert len(read_scores(plots / f"{algo.name}_Pendulum-v1.csv")) == len(state["scores"])
    assert (plots / f"{algo.name}_Pendulum-v1.png").read_bytes()[:4] == b"\x89PNG"


def test_sighup_under_nohup_is_left_ignored(algo, tmp_path):
    """`nohup python main_ddpg.py &` asks the run to outlive its terminal: a SIGHUP then changes nothing."""
    proc = subprocess.Popen(script(algo, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    read_until_episode(proc.stdout.readline, 1)
    proc.send_signal(signal.SIGHUP)
    read_until_episode(proc.stdout.readline, 2)  # still training
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped by SIGTERM" in out, err


def test_a_killed_run_leaves_its_curve_up_to_the_last_save(algo, tmp_path):
    """The CSV and the curve are rewritten at every save of latest/ (--save-every 2): SIGKILL after episode 4
    leaves both, with the scores latest/ holds."""
    proc = subprocess.Popen(script(algo, tmp_path, "--save-every", "2"), stdout=subprocess.PIPE, text=True)
    read_until_episode(proc.stdout.readline, 4)
    proc.kill()
    proc.communicate(timeout=60)
    plots = tmp_path / "run" / "plots"
    scores = read_scores(plots / f"{algo.name}_Pendulum-v1.csv")
    saved = torch.load(tmp_path / "run" / "tmp" / "latest" / "training_state.pt", weights_only=True)["scores"]
    assert len(scores) >= 4 and len(scores) % 2 == 0 and np.allclose(scores, saved[:len(scores)], atol=1e-4)
    with Image.open(plots / f"{algo.name}_Pendulum-v1.png") as png:
        png.verify()  # a whole PNG, never a half-written one
    assert not [p for p in plots.iterdir() if ".tmp" in p.name]


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
    saved = len(torch.load(chkpt / "latest" / "training_state.pt", weights_only=True)["scores"])
    assert saved >= 4  # what step 1 saved, or later
    result = run_script(algo, tmp_path, "--resume", "--episodes", str(saved + 1))
    assert result.returncode == 0, result.stderr
    assert f"resuming after episode {saved} " in result.stdout and f"{saved + 1} episodes" in result.stdout
    assert len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.csv")) == saved + 1
    assert not any(p.name.endswith((".new", ".old")) or ".tmp" in p.name for p in chkpt.rglob("*"))


# ---------------------------------------------------------------------------------------------------------
# A stop in the middle of an episode, then --resume: the scores of the uninterrupted run
# (a stop at --episodes: test_resume_with_saved_buffer_gives_the_scores_of_an_uninterrupted_run above)
# ---------------------------------------------------------------------------------------------------------
STOPPED = [*LANDER, "--episodes", "5", "--save-buffer", "--save-every", "1"]
ENV = "LunarLanderContinuous-v2"


@pytest.fixture(scope="module")
def uninterrupted(algo, tmp_path_factory):
    """The plots folder of the run every stopped and resumed run must reproduce."""
    folder = tmp_path_factory.mktemp(f"uninterrupted-{algo.name}")
    subprocess.run([sys.executable, str(ROOT / algo.folder / f"{algo.script}.py"), *STOPPED, "--chkpt-dir",
                    str(folder / "tmp"), "--plot-dir", str(folder / "plots")], check=True, capture_output=True,
                   timeout=300)
    return folder / "plots"


def stop_in_process(algo, capsys, monkeypatch, argv, signum):
    """Run in this process and send `signum` to it at the 350th env step, in the middle of an episode."""
    real_remember, stored = algo.agent.remember, []

    def remember(self, *transition):
        real_remember(self, *transition)
        stored.append(1)
        if len(stored) == 350:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(algo.agent, "remember", remember)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run_in_process(algo, argv, capsys)
    finally:
        signal.signal(signal.SIGINT, previous)
        monkeypatch.undo()


def kill_in_its_third_episode(algo, argv):
    proc = subprocess.Popen([sys.executable, "-u", str(ROOT / algo.folder / f"{algo.script}.py"), *argv],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("episode    2 "):
            time.sleep(0.2)
            break
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("how", ["--max-steps", "SIGINT", "SIGTERM", "SIGKILL"])
def test_resume_after_a_stop_mid_episode_gives_the_uninterrupted_scores(algo, tmp_path, capsys, monkeypatch,
                                                                         uninterrupted, how):
    argv = [*STOPPED, *dirs(tmp_path)]
    if how == "--max-steps":
        code, out, err = run_in_process(algo, [*argv, "--max-steps", "350"], capsys)
    elif how == "SIGKILL":
        kill_in_its_third_episode(algo, argv)
        code, out, err = 0, "stopped in episode", ""
    else:
        code, out, err = stop_in_process(algo, capsys, monkeypatch, argv, getattr(signal, how))
    assert code == 0, err
    assert "stopped in episode" in out  # it did stop in the middle of an episode
    code, _, err = run_in_process(algo, ["--resume", "--max-steps", "300000", "--chkpt-dir",
                                         str(tmp_path / "run" / "tmp")], capsys)
    assert code == 0, err
    for name in (f"{algo.name}_{ENV}.csv", f"{algo.name}_{ENV}_q_bias.csv"):
        assert csv_rows(tmp_path / "run" / "plots" / name) == csv_rows(uninterrupted / name), name

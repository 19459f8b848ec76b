"""What the project shows: the critic-bias record (estimate vs obtained return), SAC's alpha record, compare.py."""
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from conftest import ROOT, dirs, run_in_process

sys.path.insert(0, str(ROOT / "benchmarks"))
import compare  # noqa: E402


def test_discounted_returns_on_a_hand_made_trajectory(ddpg):
    # G_2 = 4; G_1 = 2 + 0.5 * 4 = 4; G_0 = 1 + 0.5 * 4 = 3
    assert np.allclose(ddpg.utils.discounted_returns(np.array([1.0, 2.0, 4.0]), 0.5), [3.0, 4.0, 4.0])
    assert np.allclose(ddpg.utils.discounted_returns(np.array([1.0, 1.0]), 1.0), [2.0, 1.0])


def fake_agent(buffer, estimate):
    return types.SimpleNamespace(memory=buffer, device=torch.device("cpu"),
                                 critic_estimates=lambda s: {"Q": torch.full((len(s),), estimate)})


def test_q_bias_row_reads_the_last_episode_from_the_buffer(ddpg):
    buffer = ddpg.buffer.ReplayBuffer(5, 2, 1)  # a ring of 5: the episode below wraps around
    buffer.store_transition(np.zeros(2), np.zeros(1), 100.0, np.zeros(2), True)  # an earlier episode's end
    for t, r in enumerate([1.0, 2.0, 4.0]):
        buffer.store_transition(np.full(2, t), np.zeros(1), r, np.zeros(2), t == 2)
    row = ddpg.utils.q_bias_row(fake_agent(buffer, 7.0), episode_len=3, gamma=0.5)
    assert row == {"real_return": pytest.approx((3.0 + 4.0 + 4.0) / 3), "Q": 7.0, "states": 3}


def test_q_bias_row_leaves_out_the_tail_of_a_truncated_episode(ddpg):
    buffer = ddpg.buffer.ReplayBuffer(10, 2, 1)
    for t in range(6):
        buffer.store_transition(np.zeros(2), np.zeros(1), 1.0, np.zeros(2), False)  # cut by the time limit
    # gamma 0.5: horizon 1 / (1 - gamma) = 2 steps left out; returns from the first 4 states
    row = ddpg.utils.q_bias_row(fake_agent(buffer, 0.0), episode_len=6, gamma=0.5)
    expected = ddpg.utils.discounted_returns(np.ones(6), 0.5)[:4].mean()
    assert row["states"] == 4 and row["real_return"] == pytest.approx(expected)


def test_every_run_writes_the_critic_bias_and_sacs_alpha(algo, tmp_path, capsys):
    code, out, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "1", *algo.small,
                                           *dirs(tmp_path)], capsys)
    assert code == 0, err
    plots = tmp_path / "run" / "plots"
    q_bias = (plots / f"{algo.name}_Pendulum-v1_q_bias.csv").read_text().splitlines()
    columns = {"ddpg": "episode,env_steps,real_return,Q,states",
               "sac": "episode,env_steps,real_return,min_Q,Q1,Q2,states"}[algo.name]
    assert q_bias[0] == columns and len(q_bias) == 2  # recorded from the first episode on
    row = dict(zip(columns.split(","), map(float, q_bias[1].split(","))))
    assert row["episode"] == 1 and row["env_steps"] == 200 and row["states"] == 100  # truncated: 100 left out
    assert -1700 < row["real_return"] < 0  # Pendulum's rewards are in [-16.3, 0]
    assert (plots / f"{algo.name}_Pendulum-v1_q_bias.png").read_bytes()[:4] == b"\x89PNG"
    if algo.name == "sac":
        assert row["min_Q"] == pytest.approx(min(row["Q1"], row["Q2"]), abs=0.5)
        alpha = (plots / "sac_Pendulum-v1_alpha.csv").read_text().splitlines()
        assert alpha[0] == "episode,env_steps,alpha,entropy,target_entropy" and alpha[1].endswith(",-1")
        assert (plots / "sac_Pendulum-v1_alpha.png").is_file()


def write_run(folder, algo, env, seed):
    """A small made-up run: scores rising with the seed's offset, and a critic-bias record."""
    folder.mkdir(parents=True, exist_ok=True)
    episodes = np.arange(1, 31)
    avg = -200 + 10 * episodes + 20 * seed
    lines = ["episode,env_steps,score,avg100,minutes"]
    lines += [f"{e},{100 * e},{a + 5:.1f},{a:.1f},{0.1 * e:.2f}" for e, a in zip(episodes, avg)]
    (folder / f"{algo}_{env}.csv").write_text("\n".join(lines) + "\n")
    cols = "Q" if algo == "ddpg" else "min_Q,Q1,Q2"
    rows = [f"{e},{100 * e},{-50 + e:.1f}," + ",".join(f"{-40 + e + k:.1f}" for k in range(len(cols.split(","))))
            + ",50" for e in (1, 5, 10, 15, 20, 25, 30)]
    (folder / f"{algo}_{env}_q_bias.csv").write_text("\n".join([f"episode,env_steps,real_return,{cols},states"] + rows))


def test_compare_draws_bands_across_seeds_from_csvs(tmp_path, capsys):
    env = "LunarLanderContinuous-v2"
    for algo in ("ddpg", "sac"):
        for seed in (0, 1):
            write_run(tmp_path / "compare" / f"{algo}_seed{seed}", algo, env, seed)
    assert compare.main(["--plot-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ddpg: 2 run(s)" in out and "sac: 2 run(s)" in out
    assert (tmp_path / f"ddpg_vs_sac_{env}.png").read_bytes()[:4] == b"\x89PNG"
    x, mean, low, high = compare.band([(np.array([0.0, 10.0]), np.array([0.0, 10.0])),
                                       (np.array([0.0, 5.0]), np.array([2.0, 2.0]))], points=3)
    assert np.allclose(x, [0, 2.5, 5]) and np.allclose(mean, [1, 2.25, 3.5]) and np.allclose(high, [2, 2.5, 5])


def test_compare_reads_a_single_run_and_reports_none(tmp_path, capsys):
    write_run(tmp_path, "sac", "Pendulum-v1", 0)
    assert compare.main(["--plot-dir", str(tmp_path), "--env", "Pendulum-v1"]) == 0
    assert "sac: 1 run(s)" in capsys.readouterr().out
    assert compare.main(["--plot-dir", str(tmp_path / "empty")]) == 2
    assert "no runs for LunarLanderContinuous-v2" in capsys.readouterr().err


def test_compare_runs_both_agents(tmp_path):
    small = "--episodes 2 --fc1-dims 16 --fc2-dims 16 --batch-size 16 --learning-starts 100"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--run", "--env", "Pendulum-v1",
                             "--seeds", "0", "1", "--parallel", "2", "--args", small, "--plot-dir",
                             str(tmp_path / "plots"), "--chkpt-dir", str(tmp_path / "tmp")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ddpg: 2 run(s)" in result.stdout and "sac: 2 run(s)" in result.stdout
    assert (tmp_path / "plots" / "ddpg_vs_sac_Pendulum-v1.png").is_file()
    assert (tmp_path / "tmp" / "compare" / "sac_seed1" / "best" / "actor.pt").is_file()


def test_compare_reads_the_runs_of_time_to_solve(tmp_path, capsys):
    env = "LunarLanderContinuous-v2"
    for algo in ("ddpg", "sac"):
        for seed in (0, 1, 2):
            write_run(tmp_path / "x", algo, env, seed)
            for suffix in ("", "_q_bias"):
                (tmp_path / "x" / f"{algo}_{env}{suffix}.csv").rename(tmp_path / f"{algo}_seed{seed}{suffix}.csv")
    (tmp_path / "sb3-sac_seed0.csv").write_text("episode,env_steps,score,avg100,minutes\n1,10,0,0,0.1\n")
    out = tmp_path / "figure.png"
    assert compare.main(["--runs", str(tmp_path), "--out", str(out)]) == 0
    assert "ddpg: 3 run(s)" in capsys.readouterr().out and out.is_file()


def test_recording_the_critic_does_not_change_what_is_learned(algo, tmp_path, capsys, monkeypatch):
    argv = ["--env", "Pendulum-v1", "--episodes", "3", *algo.small, "--learning-starts", "200"]
    curves = []
    for run, every in (("often", 1), ("rarely", 1000)):
        monkeypatch.setattr(algo.utils.Progress, "Q_BIAS_EVERY", every)
        assert run_in_process(algo, [*argv, *dirs(tmp_path, run)], capsys)[0] == 0
        curves.append(np.loadtxt(tmp_path / run / "plots" / f"{algo.name}_Pendulum-v1.csv", delimiter=",",
                                 skiprows=1)[:, 2])
    assert np.array_equal(curves[0], curves[1])

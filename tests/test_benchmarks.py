"""The benchmark scripts keep working: tiny runs of benchmarks/update_speed.py and benchmarks/time_to_solve.py, and
benchmarks/compare.py's DDPG-vs-SAC figure from the runs' CSVs.

Stable-Baselines3 is a benchmark-only dependency (benchmarks/requirements.txt): where it is not installed the
scripts measure our side only and say so, and these tests check that; where it is, they check SB3's rows too.
They assert on behaviour (files, columns, rows, positive numbers), never on speed.
"""
import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT

HAS_SB3 = importlib.util.find_spec("stable_baselines3") is not None
TINY_OURS = ["--max-steps", "400", "--learning-starts", "200",
             "--our-args", "--fc1-dims 32 --fc2-dims 32 --batch-size 32"]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_update_speed_times_every_configuration(tmp_path):
    result = run("update_speed.py", "--threads", "1", "--repeats", "1", "--updates", "2", "--out", str(tmp_path))
    rows = read_csv(tmp_path / "update_speed.csv")
    assert {(r["algo"], r["hidden"], r["batch"]) for r in rows} == {
        ("ddpg", "256x256", "128"), ("ddpg", "400x300", "64"), ("ddpg", "400x300", "256"),
        ("sac", "128x128", "128"), ("sac", "256x256", "256"), ("sac", "400x300", "256")}
    for r in rows:
        assert r["threads"] == "1"
        assert all(float(r[k]) > 0 for k in ("ours_ms", "ours_updates_per_s", "ours_mflop", "ours_x_floor",
                                              "matmul_gflops", "ours_matmul_ms"))
        if HAS_SB3 and r["compared"] == "sb3":
            assert all(float(r[k]) > 0 for k in ("sb3_ms", "sb3_mflop", "sb3_x_floor", "ours_vs_sb3", "sb3_matmul_ms"))
        else:
            assert r["sb3_ms"] == r["ours_vs_sb3"] == ""
    assert sum(r["compared"] == "ours only" for r in rows) == 2  # our default sizes have no SB3 twin
    if not HAS_SB3:
        assert "stable-baselines3 is not installed" in result.stdout
    table = (tmp_path / "update_speed.md").read_text()
    assert table.count("\n| ddpg |") == 3 and table.count("\n| sac |") == 3


def test_matmul_replay_runs_the_same_products_as_the_update(monkeypatch):
    """The replay holds each matrix product of the recorded call, forward and backward, with its shapes and
    layout (a transposed weight stays transposed), and nothing else."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import update_speed
    W = torch.randn(5, 4, requires_grad=True)  # used as x @ W.t(), as nn.Linear does
    x = torch.randn(3, 4)

    def update():
        (torch.relu(x @ W.t()) * 2).sum().backward()

    seen = []
    real = torch.ops.aten.mm.default

    class Spy(update_speed.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is real:
                seen.append([(a.shape, a.stride()) for a in args])
            return func(*args, **(kwargs or {}))

    replay = update_speed.matmul_replay(update)
    with Spy():
        replay()
    # forward x [3, 4] @ W^T [4, 5] (a column-major view); backward dL/dW = g^T [5, 3] @ x [3, 4]
    assert seen == [[(torch.Size([3, 4]), (4, 1)), (torch.Size([4, 5]), (1, 4))],
                    [(torch.Size([5, 3]), (1, 5)), (torch.Size([3, 4]), (4, 1))]]


def test_time_to_solve_writes_a_row_a_run_and_skips_sb3_when_absent(tmp_path):
    result = run("time_to_solve.py", "--algos", "ddpg", "sac", "sb3-sac", "sb3-td3", "--seeds", "0",
                 "--cap-minutes", "1", "--parallel", "2", *TINY_OURS, "--out", str(tmp_path))
    rows = read_csv(tmp_path / "time_to_solve.csv")
    algos = ["ddpg", "sac", "sb3-sac", "sb3-td3"] if HAS_SB3 else ["ddpg", "sac"]
    assert [(r["algo"], r["seed"]) for r in rows] == [(a, "0") for a in algos]
    for r in rows:  # 400 env steps cannot solve the lander: each run counts at the cap
        assert r["solved"] == "False" and float(r["minutes"]) == float(r["cap_minutes"]) == 1
        assert int(r["env_steps"]) > 0 and int(r["episodes"]) > 0 and float(r["steps_per_s"]) > 0
        episodes = read_csv(tmp_path / "time_to_solve_runs" / f"{r['algo']}_seed0.csv")
        assert list(episodes[0]) == ["episode", "env_steps", "score", "avg100", "minutes"]
        assert len(episodes) == int(r["episodes"]) and int(episodes[-1]["env_steps"]) <= 400
    table = (tmp_path / "time_to_solve.md").read_text()
    assert all(f"| {a} | 0 | no |" in table for a in algos)
    assert (tmp_path / "time_to_solve.png").stat().st_size > 0
    if not HAS_SB3:
        assert "stable-baselines3 is not installed: skipping sb3-sac, sb3-td3" in result.stdout
        assert "Skipped: sb3-sac, sb3-td3" in table


def test_time_to_solve_stops_a_run_at_the_cap_and_keeps_its_episodes(tmp_path):
    run("time_to_solve.py", "--algos", "sac", "--seeds", "1", "--cap-minutes", "0.15", "--learning-starts", "100",
        "--our-args", "--fc1-dims 32 --fc2-dims 32 --batch-size 32", "--out", str(tmp_path))
    (row,) = read_csv(tmp_path / "time_to_solve.csv")
    assert row["solved"] == "False" and float(row["minutes"]) == 0.15 and int(row["episodes"]) > 0
    assert "stopped by SIGTERM" in (tmp_path / "time_to_solve_runs" / "sac_seed1.log").read_text()
    assert len(read_csv(tmp_path / "time_to_solve_runs" / "sac_seed1.csv")) == int(row["episodes"])


def test_time_to_solve_report_only_rebuilds_the_results_from_the_runs(tmp_path):
    runs = tmp_path / "time_to_solve_runs"
    runs.mkdir()
    for algo, seed, rise in (("sac", 0, 3.0), ("sac", 1, 1.0), ("sb3-sac", 0, 0.5)):
        lines = ["episode,env_steps,score,avg100,minutes"]
        lines += [f"{e},{100 * e},0,{-100 + rise * e:.1f},{0.1 * e:.1f}" for e in range(1, 151)]
        (runs / f"{algo}_seed{seed}.csv").write_text("\n".join(lines) + "\n")
    result = run("time_to_solve.py", "--report-only", "--algos", "sac", "sb3-sac", "--seeds", "0", "1",
                 "--cap-minutes", "30", "--out", str(tmp_path))
    rows = {(r["algo"], r["seed"]): r for r in read_csv(tmp_path / "time_to_solve.csv")}
    assert set(rows) == {("sac", "0"), ("sac", "1"), ("sb3-sac", "0")}  # no run for sb3-sac seed 1: no row
    assert rows["sac", "0"]["solved"] == "True" and float(rows["sac", "0"]["minutes"]) == 10.0  # episode 100
    assert rows["sb3-sac", "0"]["solved"] == "False" and "started" not in result.stdout
    assert (tmp_path / "time_to_solve.png").is_file()


# ---------------------------------------------------------------------------------------------------------
# compare.py: DDPG against SAC across seeds, from the CSVs every run writes
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def compare(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import compare
    return compare


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


def test_compare_draws_bands_across_seeds_from_csvs(compare, tmp_path, capsys):
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


def test_compare_reads_a_single_run_and_reports_none(compare, tmp_path, capsys):
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


def test_compare_reads_the_runs_of_time_to_solve(compare, tmp_path, capsys):
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

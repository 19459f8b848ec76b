"""The benchmark scripts keep working: tiny runs of benchmarks/update_speed.py and benchmarks/time_to_solve.py, and
benchmarks/compare.py's DDPG-vs-SAC figure from the runs' CSVs.

Stable-Baselines3 is a benchmark-only dependency (benchmarks/requirements.txt): where it is not installed the
scripts measure our side only and say so, and these tests check that; where it is, they check SB3's rows too.
They assert on behaviour (files, columns, rows, positive numbers), never on speed.
"""
import csv
import dataclasses
import importlib.util
import json
import re
import signal
import subprocess
import sys
import time
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
    result = run("update_speed.py", "--threads", "1", "--repeats", "1", "--updates", "2", "--runs", "2",
                 "--out", str(tmp_path))
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
    assert "median over 2 runs" in table and "command: `python benchmarks/update_speed.py --threads 1" in table
    for r in rows:  # two runs: the median ratio lies within its range
        assert r["runs"] == "2"
        if r["ours_vs_sb3"]:
            assert float(r["ours_vs_sb3_min"]) <= float(r["ours_vs_sb3"]) <= float(r["ours_vs_sb3_max"])
    compared = [line for line in table.splitlines() if line.startswith("| ") and "ours only" not in line
                and line.split(" | ")[0] in ("| ddpg", "| sac")]
    assert len(compared) == (4 if HAS_SB3 else 0)  # the four sizes SB3 runs too, each ratio with its range
    assert all(re.search(r"\| \d+\.\d\dx \(\d+\.\d\d-\d+\.\d\d\) \|", line) for line in compared)


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


def test_time_to_solve_reads_ours_from_the_seeds_runs_up_to_the_cap(tmp_path):
    """--ours-from: our rows come from benchmarks/seeds.py's run folders, cut at the cap, and nothing is run."""
    seeds_runs = tmp_path / "seeds_runs"
    for seed, rise in ((10, 3.0), (11, 1.0)):  # seed 10's mean reaches 200 at episode 100 (10 min), 11's at 300
        folder = seeds_runs / f"sac_seed{seed}"
        folder.mkdir(parents=True)
        lines = ["episode,env_steps,score,avg100,minutes"]
        lines += [f"{e},{100 * e},0,{-100 + rise * e:.1f},{0.1 * e:.1f}" for e in range(1, 401)]  # 40 minutes
        (folder / "sac_LunarLanderContinuous-v2.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run("time_to_solve.py", "--algos", "sac", "--seeds", "10", "11", "--cap-minutes", "25",
                 "--ours-from", str(seeds_runs), "--out", str(out))
    assert "started" not in result.stdout
    rows = {r["seed"]: r for r in read_csv(out / "time_to_solve.csv")}
    assert rows["10"]["solved"] == "True" and float(rows["10"]["minutes"]) == 10.0
    assert int(rows["10"]["env_steps"]) == 10_000 and rows["10"]["episodes"] == "100"
    # seed 11 solves at 30 minutes, after the 25-minute cap: unsolved, counted at the cap, its episodes cut there
    assert rows["11"]["solved"] == "False" and float(rows["11"]["minutes"]) == 25.0
    episodes = read_csv(out / "time_to_solve_runs" / "sac_seed11.csv")
    assert len(episodes) == 250 and float(episodes[-1]["minutes"]) == 25.0
    assert str(seeds_runs / "sac_seed11") in (out / "time_to_solve_runs" / "sac_seed11.log").read_text()
    assert "Not run by this script: sac_seed10, sac_seed11" in (out / "time_to_solve.md").read_text()


def test_time_to_solve_reads_ours_from_an_earlier_time_to_solve_runs_folder(tmp_path):
    """--ours-from an earlier time_to_solve_runs folder (flat <algo>_seed<N>.csv): cut at the cap, its records
    copied, and a run that was itself taken keeps naming its first source."""
    earlier = tmp_path / "same" / "time_to_solve_runs"
    earlier.mkdir(parents=True)
    lines = ["episode,env_steps,score,avg100,minutes"] + [f"{e},{100 * e},0,{-100 + 3.0 * e:.1f},{0.1 * e:.1f}"
                                                          for e in range(1, 201)]
    (earlier / "ddpg_seed12.csv").write_text("\n".join(lines) + "\n")
    (earlier / "ddpg_seed12_q_bias.csv").write_text("step,bias\n1,0.5\n")
    (earlier / "ddpg_seed12.log").write_text("not run here: ... written by benchmarks/seeds.py\n")
    out = tmp_path / "own"
    result = run("time_to_solve.py", "--algos", "ddpg", "--seeds", "12", "--cap-minutes", "15",
                 "--ours-from", str(earlier), "--out", str(out))
    assert "started" not in result.stdout
    [row] = read_csv(out / "time_to_solve.csv")
    assert (row["solved"], float(row["minutes"]), row["env_steps"]) == ("True", 10.0, "10000")
    assert len(read_csv(out / "time_to_solve_runs" / "ddpg_seed12.csv")) == 150  # 15 minutes of episodes
    assert (out / "time_to_solve_runs" / "ddpg_seed12_q_bias.csv").read_text() == "step,bias\n1,0.5\n"
    log = (out / "time_to_solve_runs" / "ddpg_seed12.log").read_text()
    assert str(earlier / "ddpg_seed12.csv") in log and "written by benchmarks/time_to_solve.py (not run here" in log
    # the invocation is recorded beside the runs and listed in the table's file, and so is a later --report-only
    [recorded] = (out / "time_to_solve_runs" / "commands.txt").read_text().splitlines()
    assert recorded.endswith(f"python benchmarks/time_to_solve.py --algos ddpg --seeds 12 --cap-minutes 15 "
                             f"--ours-from {earlier} --out {out}")
    assert f"- `{recorded}`" in (out / "time_to_solve.md").read_text()
    run("time_to_solve.py", "--report-only", "--algos", "ddpg", "--seeds", "12", "--cap-minutes", "15",
        "--out", str(out))
    table = (out / "time_to_solve.md").read_text()
    assert table.index(f"- `{recorded}`") < table.index("time_to_solve.py --report-only --algos ddpg")
    assert (out / "time_to_solve_runs" / "commands.txt").read_text().splitlines() == [recorded]


def test_time_to_solve_ours_from_a_folder_without_the_run_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "time_to_solve.py"), "--algos", "ddpg",
                             "--seeds", "10", "--ours-from", str(tmp_path), "--out", str(tmp_path / "out")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"time_to_solve.py: error: --ours-from: no scores CSV for ddpg_seed10: neither "
        f"{tmp_path / 'ddpg_seed10' / 'ddpg_LunarLanderContinuous-v2.csv'} nor {tmp_path / 'ddpg_seed10.csv'}"]


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
    assert "ddpg solved at env steps: not solved, not solved" in out  # 30 episodes: too few to count


def test_compare_marks_where_each_run_solved(compare):
    episodes = np.arange(1, 151, dtype=float)
    rising = {"episode": episodes, "env_steps": 1000 * episodes, "avg100": 2.0 * episodes - 40}  # 200 at ep. 120
    assert compare.solved_at(rising) == 119
    early = dict(rising, avg100=np.full(150, 250.0))  # above 200 from the start: counts from episode 100 on
    assert compare.solved_at(early) == 99
    assert compare.solved_at(dict(rising, avg100=np.full(150, 199.9))) is None


def test_compare_reads_a_single_run_and_reports_none(compare, tmp_path, capsys):
    write_run(tmp_path, "sac", "Pendulum-v1", 0)
    assert compare.main(["--plot-dir", str(tmp_path), "--env", "Pendulum-v1"]) == 0
    assert "sac: 1 run(s)" in capsys.readouterr().out
    assert compare.main(["--plot-dir", str(tmp_path / "empty")]) == 2
    assert "no runs for LunarLanderContinuous-v2" in capsys.readouterr().err


def test_compare_reads_both_benchmarks_layouts_in_seed_order(compare, tmp_path, capsys):
    env = "LunarLanderContinuous-v2"
    for seed in (10, 9):  # seeds.py: a folder a run; 10 sorts before 9 as text
        write_run(tmp_path / "seeds_runs" / f"sac_seed{seed}", "sac", env, seed)
    flat = tmp_path / "time_to_solve_runs"  # time_to_solve.py: <algo>_seed<N>.csv beside its _q_bias.csv
    write_run(flat, "ddpg", env, 3)
    for suffix in ("", "_q_bias"):
        (flat / f"ddpg_{env}{suffix}.csv").rename(flat / f"ddpg_seed3{suffix}.csv")
    (flat / "ddpg_seed3.log").write_text("not a run\n")
    runs = compare.find_runs(tmp_path, env, tmp_path / "seeds_runs")
    assert list(runs) == ["sac"]
    assert runs["sac"] == [(tmp_path / "seeds_runs" / f"sac_seed{s}" / f"sac_{env}.csv",
                            tmp_path / "seeds_runs" / f"sac_seed{s}" / f"sac_{env}_q_bias.csv") for s in (9, 10)]
    assert compare.find_runs(tmp_path, env, flat) == {"ddpg": [(flat / "ddpg_seed3.csv",
                                                                flat / "ddpg_seed3_q_bias.csv")]}
    assert compare.main(["--runs", str(tmp_path / "seeds_runs"), "--out", str(tmp_path / "fig.png")]) == 0
    assert "sac: 2 run(s)" in capsys.readouterr().out and (tmp_path / "fig.png").is_file()


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
    printed = capsys.readouterr().out
    # our runs only: the planted SB3 run is neither counted nor drawn
    assert "ddpg: 3 run(s)" in printed and "sac: 3 run(s)" in printed and "sb3" not in printed and out.is_file()


# ---------------------------------------------------------------------------------------------------------
# seeds.py: the solve rate of our defaults over held-out seeds
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def seeds(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import seeds
    return seeds


def test_seeds_quick_trains_evaluates_and_reports_each_seed(tmp_path):
    # --quick with a smaller budget still (600 env steps, 300 random) to keep the test short
    result = run("seeds.py", "--algo", "ddpg", "--seeds", "10", "11", "--parallel", "2", "--quick",
                 "--max-steps", "600", "--our-args", "--learning-starts 300", "--out", str(tmp_path))
    assert "started ddpg_seed10" in result.stdout and "evaluating ddpg_seed11 (2 episodes)" in result.stdout
    assert not (tmp_path / "seeds.md").exists() and not (tmp_path / "seeds.csv").exists()  # real results untouched
    table = (tmp_path / "seeds_quick.md").read_text()
    assert "seeds 10-11): solve rate: 0/2\n" in table and "none solved" in table
    rows = read_csv(tmp_path / "seeds_quick.csv")
    assert [(r["algo"], r["seed"], r["solved"], r["status"]) for r in rows] == [
        ("ddpg", "10", "False", "complete"), ("ddpg", "11", "False", "complete")]
    for r in rows:
        assert r["eval_episodes"] == "2" and 0 <= int(r["eval_below"]) <= 2 and float(r["eval_std"]) >= 0
        during = f"{float(r['best_evaluation']):.1f} ({int(r['best_evaluation_env_steps']):,})"
        speed = f"{float(r['steps_per_second']):,.0f}"
        assert f"| {r['seed']} | no | - | - | {speed} | - | - | {during} | {float(r['eval_mean']):.1f} +- " in table
        assert int(r["evaluations"]) >= 1 and 0 < float(r["evaluation_share"]) < 1 and float(r["steps_per_second"]) > 0
        assert r["max_steps"] == "600" and "--learning-starts 300" in r["our_args"] and r["torch"].startswith("torch")
        run_dir = tmp_path / "seeds_quick_runs" / f"ddpg_seed{r['seed']}"
        episodes = read_csv(run_dir / "ddpg_LunarLanderContinuous-v2.csv")
        assert list(episodes[0]) == ["episode", "env_steps", "score", "avg100", "minutes"]
        evaluations = read_csv(run_dir / "ddpg_LunarLanderContinuous-v2_eval.csv")
        assert len(evaluations) == int(r["evaluations"]) and evaluations[0]["episodes"] == "2"
        assert max(float(e["mean"]) for e in evaluations) == pytest.approx(float(r["best_evaluation"]), abs=1e-3)
        assert len(episodes) == int(r["episodes"]) and int(episodes[-1]["env_steps"]) <= 600
        assert "mean score" in (run_dir / "evaluate.log").read_text() and (run_dir / "train.log").is_file()
    assert (tmp_path / "seeds_quick_ddpg.png").read_bytes()[:4] == b"\x89PNG"
    leftovers = [p for p in tmp_path.rglob("*") if p.suffix == ".pt" or p.name in ("best", "latest", "agent.json")]
    assert leftovers == []  # the checkpoints lived in a scratch folder, deleted after the evaluation


def test_seeds_sigterm_stops_the_runs_cleanly_and_reports_what_there_is(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "seeds.py"), "--algo", "sac", "--seeds", "10", "11", "--quick",
           "--max-steps", "100000", "--out", str(tmp_path)]
    log = tmp_path / "seeds_quick_runs" / "sac_seed10" / "train.log"
    benchmark = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180  # seconds alone; a minute or more beside busy training runs
        while not (log.is_file() and "episode    2 " in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        benchmark.send_signal(signal.SIGTERM)
        output = benchmark.communicate(timeout=120)[0]
    finally:
        benchmark.kill()
    assert benchmark.returncode == 0, output
    assert "SIGTERM: stopping the runs; not started: sac_seed11" in output
    assert "stopped by SIGTERM" in log.read_text()  # one signal: the run saved and wrote its CSVs
    (row,) = read_csv(tmp_path / "seeds_quick.csv")
    assert (row["seed"], row["status"], row["eval_mean"]) == ("10", "stopped early", "")  # no evaluation
    assert len(read_csv(log.with_name("sac_LunarLanderContinuous-v2.csv"))) == int(row["episodes"]) >= 2
    table = (tmp_path / "seeds_quick.md").read_text()
    assert "seeds none): solve rate: 0/0" in table and "left out, stopped early: seeds 10" in table
    assert not (tmp_path / "seeds_quick_runs" / "sac_seed11").exists() and not list(tmp_path.rglob("*.pt"))


def made_up_run(runs_dir, algo, seed, avg100, evaluation=(), episodes=150, minutes=0.1, during=()):
    """A run folder with a scores CSV of avg100(e) at 100 env steps and `minutes` an episode, an evaluation, and
    the evaluations during training (`during`: (env_steps, mean, seconds) each) as an _eval.csv."""
    from time_to_solve import write_episodes
    folder = runs_dir / f"{algo}_seed{seed}"
    folder.mkdir(parents=True)
    write_episodes(folder / f"{algo}_LunarLanderContinuous-v2.csv",
                   [(e, 100 * e, 0.0, avg100(e), minutes * e) for e in range(1, episodes + 1)])
    lines = [f"evaluation episode {i + 1:3d} score {s:8.1f}" for i, s in enumerate(evaluation)]
    if evaluation:
        mean, std = np.mean(evaluation), np.std(evaluation)
        lines.append(f"mean score {mean:.1f} +- {std:.1f} over {len(evaluation)} episodes")
    (folder / "evaluate.log").write_text("\n".join(lines) + "\n")
    if during:
        rows = ["episode,env_steps,minutes,mean,std,min,max,episodes,seconds"]
        rows += [f"{steps // 100},{steps},0,{mean},0,{mean},{mean},10,{seconds}" for steps, mean, seconds in during]
        (folder / f"{algo}_LunarLanderContinuous-v2_eval.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_seeds_summary_from_made_up_runs_and_report_only_merges_agents(seeds, tmp_path):
    runs = tmp_path / "seeds_runs"
    # sac 10 reaches a mean of 200 at episode 120 (peak 225 at 130, ends at 205); sac 11 only before episode 100
    made_up_run(runs, "sac", 10, lambda e: -100 + 2.5 * e if e <= 130 else 225 - (e - 130), [250, 190, 230],
                during=[(100, -50.0, 6), (10_000, 240.0, 6), (12_000, 240.0, 3), (14_000, 230.0, 3)])
    made_up_run(runs, "sac", 11, lambda e: 250 if 40 <= e <= 60 else e if e <= 140 else 280 - e, [100, 150])
    assert seeds.main(["--report-only", "--algo", "sac", "--out", str(tmp_path)]) == 0
    rows = {(r["algo"], r["seed"]): r for r in read_csv(tmp_path / "seeds.csv")}
    assert set(rows) == {("sac", "10"), ("sac", "11")}
    s10, s11 = rows["sac", "10"], rows["sac", "11"]
    assert (s10["solved"], s10["solve_episode"], s10["solve_env_steps"], float(s10["solve_minutes"])) == (
        "True", "120", "12000", 12.0)
    assert (float(s10["best_avg100"]), float(s10["final_avg100"])) == (225.0, 205.0)
    assert (s10["eval_mean"], s10["eval_episodes"], s10["eval_below"]) == ("223.3000", "3", "1")
    # best/ is the first evaluation of the best mean; 18 s of evaluation in a 15-minute run
    assert (s10["evaluations"], s10["best_evaluation"], s10["best_evaluation_env_steps"]) == ("4", "240.0000", "10000")
    assert float(s10["evaluation_share"]) == pytest.approx(0.02) and s11["evaluation_share"] == ""
    assert float(s10["steps_per_second"]) == pytest.approx(15_000 / 900, abs=1e-4)
    assert s11["solved"] == "False" and s11["solve_env_steps"] == s11["solve_minutes"] == ""  # 250 at e < 100
    assert (float(s11["best_avg100"]), float(s11["final_avg100"])) == (140.0, 130.0)
    table = (tmp_path / "seeds.md").read_text()
    assert "\nsac (defaults, seeds 10-11): solve rate: 1/2\n" in table
    assert "| 10 | yes | 12,000 | 12.0 | 17 | 225.0 | 205.0 | 240.0 (10,000) | 223.3 +- 24.9 | 1/3 |" in table
    assert "| 11 | no | - | - | 17 | 140.0 | 130.0 | - | 125.0 +- 25.0 | 2/2 |" in table
    assert "of a run's time (median; at most 2.0%)" in table
    assert "median 12,000, worst 12,000" in table and "evaluation mean (solved seeds): median 223.3, minimum 223.3" \
        in table
    assert (tmp_path / "seeds_sac.png").is_file()

    # then ddpg: the sac rows stay (from seeds.csv: their folders are gone), the ddpg rows join them
    for folder in runs.iterdir():
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    made_up_run(runs, "ddpg", 10, lambda e: -100 + 3 * e, [210, 230])  # 200 at episode 100: 10,000 steps
    made_up_run(runs, "ddpg", 11, lambda e: -150 + 2.5 * e, [180, 220])  # 200 at episode 140: 14,000 steps
    made_up_run(runs, "ddpg", 12, lambda e: 0.0, minutes=0.025)  # never; no evaluation; 4x the env steps/s
    assert seeds.main(["--report-only", "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "seeds.csv")
    assert [(r["algo"], r["seed"], r["solved"]) for r in rows] == [
        ("ddpg", "10", "True"), ("ddpg", "11", "True"), ("ddpg", "12", "False"), ("sac", "10", "True"),
        ("sac", "11", "False")]
    table = (tmp_path / "seeds.md").read_text()
    assert "\nddpg (defaults, seeds 10-12): solve rate: 2/3\n" in table
    assert "\nsac (defaults, seeds 10-11): solve rate: 1/2\n" in table
    assert "- env steps to solve (solved seeds): median 12,000, worst 14,000" in table
    assert "- minutes to solve (solved seeds): median 12.0, worst 14.0" in table
    assert "- evaluation mean (solved seeds): median 210.0, minimum 200.0" in table
    assert "| 12 | no | - | - | 67 | 0.0 | 0.0 | - | - | - |" in table
    # at a glance, one row an agent: sac 11's evaluation counts among all seeds', its steps do not (unsolved)
    assert "| ddpg | 10-12 | 2/3 | 12,000 | 14,000 | 210.0 | 200.0 |" in table
    assert "| sac | 10-11 | 1/2 | 12,000 | 12,000 | 174.2 | 125.0 |" in table
    # 15,000 env steps in 15 minutes (16.7 a second) for seeds 10 and 11, in 3.75 minutes (66.7) for seed 12
    assert "env steps a second a run over its whole budget, median 17\n" in table
    assert ": 17 to 67 env steps a second" in table
    assert (tmp_path / "seeds_ddpg.png").is_file()


def test_seeds_numbers_read_as_written_and_a_rounded_zero_has_no_sign(seeds):
    assert [seeds.number(x, ".1f") for x in (-0.04, -0.05001, 0.04, 272.84, None, float("nan"))] == [
        "0.0", "-0.1", "0.0", "272.8", "-", "-"]
    assert seeds.number(-1234.4) == "-1,234" and seeds.number(-0.4) == "0"


def test_seeds_passes_evaluate_only_the_flags_it_takes(seeds):
    from rlharness.cli import BOTH, RunConfig
    shared = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(RunConfig) if f.metadata["used_in"] == BOTH}
    assert shared - {"--seed", "--threads", "--evaluate", "--chkpt-dir", "--plot-dir"} == set(seeds.EVAL_FLAGS)
    assert seeds.eval_args(["--env", "Pendulum-v1", "--fc1-dims", "32", "--device=cpu", "--save-buffer",
                            "--batch-size", "8"]) == ["--env", "Pendulum-v1", "--device=cpu"]
    assert seeds.seed_ranges([12, 10, 11, 15, 17, 18]) == "10-12, 15, 17-18" and seeds.seed_ranges([]) == "none"


def test_update_speed_on_a_device_times_eager_and_one_cpu_thread_and_graph_only_with_cuda(tmp_path):
    run("update_speed.py", "--device", "cpu", "--repeats", "2", "--updates", "2", "--out", str(tmp_path))
    rows = read_csv(tmp_path / "update_speed_cuda.csv")
    assert [(r["algo"], r["hidden"], r["batch"]) for r in rows] == [
        ("sac", "128x128", "128"), ("sac", "256x256", "256"), ("ddpg", "256x256", "128")]
    for r in rows:
        assert float(r["eager_per_s"]) > 0 and float(r["cpu1_per_s"]) > 0
        assert r["graph_per_s"] == r["graph_x_eager"] == ""  # no CUDA graph on the CPU
    table = (tmp_path / "update_speed_cuda.md").read_text()
    assert "no GPU (a dry run on the CPU)" in table and table.count("not run (no CUDA)") == 3


def test_gpu_script_measures_the_learning_phase_from_the_scores_csv(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    csv_file = tmp_path / "scores.csv"
    csv_file.write_text("episode,env_steps,score,avg100,minutes\n1,1000,0,0,0.5\n2,2000,0,0,1.0\n"
                        "3,3000,0,0,1.25\n4,4000,0,0,1.75\n")
    # learning from step 1,500: episodes 2-4, 2,000 steps in 0.75 minutes
    assert gpu.learning_rate(csv_file, 1500) == pytest.approx(2000 / 45)
    assert gpu.learning_rate(csv_file, 3500) is None  # one episode: no interval to time
    assert gpu.learning_rate(tmp_path / "missing.csv", 0) is None


def time_to_solve_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import time_to_solve
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return time_to_solve


def test_sb3_at_our_settings_takes_our_scripts_current_defaults(ddpg, sac):
    tts = time_to_solve_module()
    ours = {"ddpg": ddpg.main_ddpg.Config(), "sac": sac.main_sac.Config()}
    for algo, cfg in ours.items():
        s = tts.our_settings(algo)
        assert s["net_arch"] == [cfg.fc1_dims, cfg.fc2_dims] and s["batch_size"] == cfg.batch_size
        assert (s["gamma"], s["tau"], s["learning_starts"], s["buffer_size"]) == (
            cfg.gamma, cfg.tau, cfg.learning_starts, cfg.buffer_size)
        assert s["n_timesteps"] == cfg.max_steps and s["train_freq"] == s["gradient_steps"] == 1
    assert tts.our_settings("sac")["learning_rate"] == ours["sac"].lr_actor
    d = tts.our_settings("ddpg")
    assert (d["lr_actor"], d["learning_rate"]) == (ours["ddpg"].lr_actor, ours["ddpg"].lr_critic)
    assert d["ou"] == dict(sigma=ours["ddpg"].sigma, theta=ours["ddpg"].theta, dt=ours["ddpg"].dt)
    # every SB3 algo --run-sb3 accepts gets settings: the zoo's, or those of the agent of ours it is paired with
    assert tts.sb3_settings("td3-ours") == tts.sb3_settings("ddpg-ours") == d
    assert tts.sb3_settings("sac-ours") == tts.our_settings("sac")
    assert tts.sb3_settings("td3")["net_arch"] == tts.sb3_settings("sac")["net_arch"] == [400, 300]
    assert {a.removeprefix("sb3-") for a in tts.SB3} == {"sac", "td3", "ddpg", "sac-ours", "td3-ours", "ddpg-ours"}


@pytest.mark.skipif(not HAS_SB3, reason="stable-baselines3 is not installed")
def test_own_rates_gives_sb3s_actor_and_critic_their_own_learning_rates():
    import gymnasium
    from stable_baselines3 import TD3
    from stable_baselines3.common.logger import Logger

    class Spaces(gymnasium.Env):
        observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
        action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)

        def reset(self, *, seed=None, options=None):
            return np.zeros(3, np.float32), {}

        def step(self, action):
            return np.zeros(3, np.float32), 0.0, False, False, {}

    model = time_to_solve_module().own_rates(TD3, 1e-4, 1e-3)("MlpPolicy", Spaces(), learning_rate=5e-2,
                                                                 learning_starts=0, batch_size=4, seed=0)
    model.set_logger(Logger(None, []))
    for _ in range(8):
        model.replay_buffer.add(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 2)), np.zeros(1), np.array([False]),
                                [{}])
    model.train(gradient_steps=2, batch_size=4)
    assert [g["lr"] for g in model.actor.optimizer.param_groups] == [1e-4]
    assert [g["lr"] for g in model.critic.optimizer.param_groups] == [1e-3]


@pytest.mark.skipif(not HAS_SB3, reason="stable-baselines3 is not installed")
def test_time_to_solve_runs_sb3_at_our_settings_and_writes_both_ratio_tables(tmp_path):
    run("time_to_solve.py", "--algos", "ddpg", "sb3-ddpg-ours", "sb3-td3", "--seeds", "0", "--cap-minutes", "1",
        "--parallel", "2", *TINY_OURS, "--out", str(tmp_path))
    rows = read_csv(tmp_path / "time_to_solve.csv")
    assert [r["algo"] for r in rows] == ["ddpg", "sb3-ddpg-ours", "sb3-td3"]
    assert all(int(r["env_steps"]) > 0 for r in rows)
    table = (tmp_path / "time_to_solve.md").read_text()
    assert "| own settings: SB3's median minutes / ours | ratio |" in table
    assert "| same settings: SB3's median minutes / ours | ratio |" in table
    assert table.index("| sb3-td3 / ddpg |") < table.index("same settings") < table.index("| sb3-ddpg-ours / ddpg |")


# ---------------------------------------------------------------------------------------------------------
# critic_probe.py: a saved critic's values at hand-made states near the pad
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["ddpg", "sac"])
def test_critic_probe_reads_the_saved_critic_at_the_states_it_names(algo, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import critic_probe

    from rlharness.checkpoints import save_agent
    from rlharness.envs import agent_sizes, make_env

    main = critic_probe.script_module(algo, f"main_{algo}")
    env = make_env(critic_probe.ENV_ID, 0)
    sizes = agent_sizes(critic_probe.ENV_ID, env, algo, fc1_dims=16, fc2_dims=16,
                        **({"layer_norm": False} if algo == "ddpg" else {}))
    torch.manual_seed(1)
    agent = main.make_agent(main.Config(), env, torch.device("cpu"), sizes)
    with torch.no_grad():  # larger weights: values far apart, so a cell read at the wrong state or action shows
        for name in ("critic_1", "critic_2") if algo == "sac" else ("critic",):
            for p in agent.parts()[name].parameters():
                p.mul_(4)
    save_agent(agent, sizes, tmp_path / "best")
    argv = ["--algo", algo, "--chkpt-dir", str(tmp_path / "best"), "--out", str(tmp_path / "probe.md")]
    critic_probe.main(argv)
    assert f"command: `python benchmarks/critic_probe.py {' '.join(argv)}`" in (tmp_path / "probe.md").read_text()

    rows = [line for line in (tmp_path / "probe.md").read_text().splitlines() if re.match(r"\| \d", line)]
    assert len(rows) == len(critic_probe.STATES)
    critic = (lambda s, a: torch.min(agent.Q1(s, a), agent.Q2(s, a))) if algo == "sac" else agent.Q
    for row, (y, vy, legs) in zip(rows, critic_probe.STATES):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:3] == [f"{y:.2f}", f"{vy:+.2f}", "down" if legs else "up"]
        s = torch.tensor([[0.0, y, 0.0, vy, 0.0, 0.0, legs, legs]])
        for cell, a in zip(cells[3:], critic_probe.ACTIONS.values()):
            with torch.no_grad():
                assert float(cell) == pytest.approx(critic(s, torch.tensor([[a, 0.0]])).item(), abs=0.051)


def test_replay_speed_puts_the_same_episodes_minutes_side_by_side(tmp_path):
    """A replay that took the first run's episodes gets the first run's minutes at its last episode and their ratio;
    one whose episodes differ is marked, not compared; the q_bias and alpha records beside the runs are not runs."""
    header = "episode,env_steps,score,avg100,minutes\n"
    first, replay = tmp_path / "first", tmp_path / "replay"
    first.mkdir(), replay.mkdir()
    (first / "sac_seed10.csv").write_text(header + "1,90,-10.5,-10.5,0.5\n2,200,3.25,-3.625,1.25\n3,290,7.0,0.0,2.0\n")
    (replay / "sac_seed10.csv").write_text(header + "1,90,-10.5,-10.5,1.0\n2,200,3.25,-3.625,2.0\n")
    (first / "ddpg_seed11.csv").write_text(header + "1,90,-10.5,-10.5,0.5\n")
    (replay / "ddpg_seed11.csv").write_text(header + "1,91,-10.5,-10.5,0.75\n")
    (replay / "sac_seed10_alpha.csv").write_text("episode,env_steps,alpha,entropy\n1,90,1.0,0.5\n")
    out = tmp_path / "speed.md"
    run("replay_speed.py", "--replay", str(replay), "--against", str(first), "--out", str(out))
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "_seed" in line]
    assert rows == ["| ddpg_seed11 | 1 | 91 | no | 0.75 | - | - |",
                    "| sac_seed10 | 2 | 200 | yes | 2.00 | 1.25 | 1.60x |"]
    assert f"Command: `python benchmarks/replay_speed.py --replay {replay}" in out.read_text()


# ---------------------------------------------------------------------------------------------------------
# claims.py: each lecture claim switched off beside the defaults
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def claims(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import claims
    return claims


def test_claims_quick_runs_both_arms_with_the_switch_and_reports_them(tmp_path):
    result = run("claims.py", "--quick", "--claims", "entropy", "--max-steps", "600", "--our-args",
                 "--learning-starts 300", "--out", str(tmp_path))
    assert "started default_sac_seed10" in result.stdout and "started no_entropy_sac_seed10" in result.stdout
    assert not (tmp_path / "claims.md").exists()  # the real results untouched
    rows = read_csv(tmp_path / "claims_quick.csv")
    assert [(r["claim"], r["arm"], r["flags"], r["seed"], r["source"]) for r in rows] == [
        ("entropy", "default", "", "10", "run here"), ("entropy", "no_entropy", "--alpha 0", "10", "run here")]
    runs = tmp_path / "claims_quick_runs"
    alpha = read_csv(runs / "no_entropy_sac_seed10" / "sac_LunarLanderContinuous-v2_alpha.csv")
    assert {float(r["alpha"]) for r in alpha} == {0.0}  # the switch reached the run
    assert json.loads((runs / "no_entropy_sac_seed10" / "run.json").read_text())["extra"] == "--alpha 0"
    assert "extra" not in json.loads((runs / "default_sac_seed10" / "run.json").read_text())
    table = (tmp_path / "claims_quick.md").read_text()
    assert "## entropy: the entropy bonus keeps the policy exploring" in table and "| no_entropy | 10 |" in table
    assert (tmp_path / "claims_quick_entropy.png").read_bytes()[:4] == b"\x89PNG"


def made_up_records(run_dir, algo, estimate, rows):
    """The critic records of a made-up run: (env_steps, estimate, real_return) each, training and deterministic."""
    for suffix, offset in (("_q_bias.csv", 0.0), ("_q_bias_policy.csv", 1.0)):
        lines = [f"episode,env_steps,real_return,{estimate},states"]
        lines += [f"{steps // 100},{steps},{real},{q + offset},10" for steps, q, real in rows]
        (run_dir / f"{algo}_LunarLanderContinuous-v2{suffix}").write_text("\n".join(lines) + "\n")


def test_claims_take_the_default_arm_from_the_sweep_cut_at_the_budget(claims, tmp_path):
    sweep, runs = tmp_path / "sweep", tmp_path / "claims_runs"
    source = made_up_run(sweep, "ddpg", 10, lambda e: -100 + 3 * e)  # 150 episodes of 100 env steps
    (source / "train.log").write_text("150 episodes, 15000 env steps\n")
    made_up_records(source, "ddpg", "Q", [(2_000, 50.0, 10.0), (6_000, 30.0, 10.0), (9_000, 20.0, 10.0),
                                          (14_000, 999.0, 0.0)])
    assert claims.sweep_run(sweep, "ddpg", 10, 16_000) is None  # it stopped short of that budget
    assert claims.sweep_run(sweep, "sac", 10, 10_000) is None  # no such run
    assert claims.sweep_run(sweep, "ddpg", 10, 10_000) == source
    default = claims.folder(runs, "default", "ddpg", 10)
    claims.take(source, default, 10_000)
    assert len(read_csv(default / "ddpg_LunarLanderContinuous-v2.csv")) == 100  # episodes 1-100: 10,000 steps
    assert "the first 10,000 env steps of " in (default / "source.txt").read_text()
    switched = made_up_run(tmp_path / "made", "ddpg", 10, lambda e: -100 + e).rename(
        claims.folder(runs, "no_noise", "ddpg", 10))
    made_up_records(switched, "ddpg", "Q", [(8_000, 12.0, 10.0)])
    claims.report(tmp_path, "claims", runs, ["noise"], [10], 10_000)
    rows = {r["arm"]: r for r in read_csv(tmp_path / "claims.csv")}
    # default: the records in (5,000, 10,000]: 30 - 10 and 20 - 10, mean 15 (the record at 14,000 is cut);
    # deterministic episodes 1 more; at episode 100 the mean is -100 + 300 = 200: solved at 10,000 env steps
    assert (float(rows["default"]["bias_training"]), float(rows["default"]["bias_policy"])) == (15.0, 16.0)
    assert rows["default"]["solve_env_steps"] == "10000" and float(rows["default"]["final_avg100"]) == 200.0
    assert float(rows["no_noise"]["bias_training"]) == 2.0 and rows["no_noise"]["solve_env_steps"] == ""
    assert rows["no_noise"]["flags"] == "--noise none" and rows["no_noise"]["source"] == "run here"
    table = (tmp_path / "claims.md").read_text()
    assert "| default | 10 | 200.0 | 200.0 | 10,000 | - | 15.0 | 16.0 | the first 10,000 env steps of " in table
    assert "- no_noise (seeds 10): solved 0/1;" in table and (tmp_path / "claims_noise.png").is_file()

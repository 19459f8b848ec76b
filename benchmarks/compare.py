"""DDPG against SAC on one figure: learning curves over seeds (by env steps and by minutes) and critic bias.

    python benchmarks/compare.py --run --seeds 0 1 2 --parallel 2   # train both agents on each seed, then plot
    python benchmarks/compare.py --run --seeds 0 1 --args "--max-steps 50000"   # shorter runs
    python benchmarks/compare.py                                    # plot the runs already in plots/
    python benchmarks/compare.py --runs benchmarks/results/time_to_solve_runs   # time_to_solve.py's runs
    python benchmarks/compare.py --runs benchmarks/results/seeds_runs           # seeds.py's full-budget runs

--run trains each (agent, seed) with the main script's default flags (plus --args) into
plots/compare/<algo>_seed<N>/ and tmp/compare/<algo>_seed<N>/. Without --run the script reads those folders,
or, where an agent has none, the single run in plots/<algo>_<env>.csv. Writes plots/ddpg_vs_sac_<env>.png:
top, each seed's 100-episode running mean, one line a run, against env steps and against minutes, with a dot where
the run solved the env (the first mean of 200 over at least 100 episodes; time_to_solve.py's runs stop there);
bottom, each run's critic estimate beside the discounted return it actually obtained (the lecture's
maximization-bias slide: DDPG's single critic against SAC's min of two). Runs of different lengths are drawn
whole: no curve is averaged over runs that have already stopped.
"""
import argparse
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {"ddpg": ROOT / "DDPG" / "main_ddpg.py", "sac": ROOT / "SAC" / "main_sac.py"}
COLORS = {"ddpg": "tab:blue", "sac": "tab:red"}
ESTIMATE = {"ddpg": ("Q", "Q(s, mu(s))"), "sac": ("min_Q", "min(Q1, Q2)(s, a~)")}


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """A CSV with a header line as {column: values}; empty cells become NaN."""
    lines = path.read_text().strip().splitlines()
    keys = lines[0].split(",")
    rows = [[float(x) if x else np.nan for x in line.split(",")] for line in lines[1:]]
    data = np.array(rows, dtype=np.float64).reshape(len(rows), len(keys))
    return {k: data[:, i] for i, k in enumerate(keys)}


def find_runs(plot_dir: Path, env: str, runs_dir: Path | None = None) -> dict[str, list[tuple[Path, Path]]]:
    """For each agent, its runs as (scores CSV, critic-record CSV) pairs.

    From runs_dir if given: benchmarks/time_to_solve.py's <algo>_seed<N>.csv and <algo>_seed<N>_q_bias.csv, or
    benchmarks/seeds.py's folders <algo>_seed<N>/ (each with the main script's CSVs); else from
    plots/compare/<algo>_seed<N>/, else the single run in plots/<algo>_<env>.csv. Runs are in seed order.
    """
    def files(run: Path, algo: str) -> tuple[Path, Path]:
        """A run folder's two CSVs, or time_to_solve.py's <algo>_seed<N>.csv and the _q_bias.csv beside it."""
        if run.is_dir():
            return run / f"{algo}_{env}.csv", run / f"{algo}_{env}_q_bias.csv"
        return run, run.with_name(f"{run.stem}_q_bias.csv")

    runs = {}
    for algo in SCRIPTS:
        if runs_dir is not None:
            seeds = {int(n): p for p in runs_dir.glob(f"{algo}_seed*") if (p.is_dir() or p.suffix == ".csv")
                     and (n := p.stem.removeprefix(f"{algo}_seed")).isdigit()}
            found = [files(seeds[n], algo) for n in sorted(seeds)]
        else:
            found = [files(f, algo) for f in sorted((plot_dir / "compare").glob(f"{algo}_seed*")) or [plot_dir]]
        if found := [(scores, bias) for scores, bias in found if scores.is_file()]:
            runs[algo] = found
    return runs


def train(algo: str, seed: int, env: str, extra: list[str], plot_dir: Path, chkpt_dir: Path) -> str:
    """One training run of the main script (default flags plus `extra`); returns its last output line."""
    name = f"{algo}_seed{seed}"
    cmd = [sys.executable, str(SCRIPTS[algo]), "--env", env, "--seed", str(seed), "--threads", "1",
           "--plot-dir", str(plot_dir / "compare" / name), "--chkpt-dir", str(chkpt_dir / "compare" / name), *extra]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"compare.py: error: {name} failed: {result.stderr.strip().splitlines()[-1:]}")
    return f"{name}: {result.stdout.strip().splitlines()[-1]}"


def solved_at(scores: dict[str, np.ndarray], solved: float = 200.0) -> int | None:
    """The index of the first episode (of at least 100) whose 100-episode mean reaches `solved`, or None."""
    hits = np.flatnonzero((scores["episode"] >= 100) & (scores["avg100"] >= solved))
    return int(hits[0]) if len(hits) else None


def draw(ax, curves: list[tuple[np.ndarray, np.ndarray]], color: str, label: str,
         marks: list[int | None] | None = None, **line) -> None:
    """Each run its own line (the label once, with the count); a dot at marks[i], the point run i solved."""
    curves = [(x, y) for x, y in curves if len(x) > 0]
    for i, (x, y) in enumerate(curves):
        count = f" ({len(curves)} runs)" if len(curves) > 1 else ""
        ax.plot(x, y, color=color, label=label + count if i == 0 else None, alpha=0.85, **{"lw": 1.2, **line})
        if marks is not None and marks[i] is not None:
            ax.plot(x[marks[i]], y[marks[i]], "o", color=color, ms=6, mec="black",
                    label="solved (100-episode mean 200)" if i == 0 else None)


def plot(runs: dict[str, list[tuple[Path, Path]]], env: str, out: Path) -> Path:
    """The 2x2 figure: running mean against env steps and minutes; each agent's critic estimate vs return."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (by_steps, by_minutes), bias_axes = axes
    for algo, files in runs.items():
        scores = [read_csv(scores_csv) for scores_csv, _ in files]
        draw(by_steps, [(s["env_steps"], s["avg100"]) for s in scores], COLORS[algo], algo.upper(),
             [solved_at(s) for s in scores])
        timed = [s for s in scores if not np.isnan(s["minutes"]).any()]
        draw(by_minutes, [(s["minutes"], s["avg100"]) for s in timed], COLORS[algo], algo.upper(),
             [solved_at(s) for s in timed])
    for ax, xlabel in ((by_steps, "env steps"), (by_minutes, "minutes of training")):
        if env.startswith("LunarLander"):
            ax.axhline(200, color="tab:green", ls="--", lw=1, label="solved (200)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("mean score of the last 100 episodes")
    by_steps.set_title(f"DDPG vs SAC on {env}: learning curves")
    by_minutes.set_title("the same runs against wall-clock time")

    for ax, algo in zip(bias_axes, SCRIPTS):
        bias = [read_csv(bias_csv) for _, bias_csv in runs.get(algo, []) if bias_csv.is_file()]
        column, label = ESTIMATE[algo]
        draw(ax, [(b["env_steps"], b["real_return"]) for b in bias], "black", "discounted return obtained")
        draw(ax, [(b["env_steps"], b[column]) for b in bias], COLORS[algo], f"critic estimate {label}")
        if algo == "sac" and bias and "Q1" in bias[0]:
            draw(ax, [(b["env_steps"], b["Q1"]) for b in bias], "tab:orange", "Q1 alone", lw=0.8, ls=":")
        ax.set_title(f"{algo.upper()}: critic estimate vs return obtained" + ("" if bias else " (no data)"))
        ax.set_xlabel("env steps")
        ax.set_ylabel("value at the visited states")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=100)
    tmp.replace(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="LunarLanderContinuous-v2")
    parser.add_argument("--run", action="store_true", help="train both agents on each seed first")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--args", default="", help="extra flags for both main scripts, e.g. '--max-steps 50000'")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time (one core each)")
    parser.add_argument("--plot-dir", default=str(ROOT / "plots"))
    parser.add_argument("--chkpt-dir", default=str(ROOT / "tmp"))
    parser.add_argument("--runs", help="read the runs of benchmarks/time_to_solve.py or seeds.py from this folder "
                        "instead, e.g. benchmarks/results/time_to_solve_runs or benchmarks/results/seeds_runs")
    parser.add_argument("--out", help="the figure's file (default: <plot-dir>/ddpg_vs_sac_<env>.png)")
    args = parser.parse_args(argv)
    plot_dir, chkpt_dir = Path(args.plot_dir), Path(args.chkpt_dir)
    if args.run:
        jobs = [(algo, seed) for seed in args.seeds for algo in SCRIPTS]
        with ThreadPoolExecutor(max(1, args.parallel)) as pool:
            for line in pool.map(lambda job: train(*job, args.env, shlex.split(args.args), plot_dir, chkpt_dir),
                                 jobs):
                print(line, flush=True)
    runs = find_runs(plot_dir, args.env, Path(args.runs) if args.runs else None)
    if not runs:
        where = args.runs or plot_dir
        print(f"compare.py: error: no runs for {args.env} in {where} (train first, or use --run)", file=sys.stderr)
        return 2
    out = plot(runs, args.env, Path(args.out) if args.out else plot_dir / f"ddpg_vs_sac_{args.env}.png")
    for algo, files in runs.items():
        print(f"{algo}: {len(files)} run(s): {', '.join(str(scores) for scores, _ in files)}")
        solved = [(data, solved_at(data)) for data in (read_csv(scores) for scores, _ in files)]
        print(f"{algo} solved at env steps: "
              + ", ".join("not solved" if i is None else f"{data['env_steps'][i]:.0f}" for data, i in solved))
    print(f"figure: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

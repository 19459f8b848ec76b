"""Robustness across seeds: how often our agent, with its default flags, solves LunarLanderContinuous, and how well.

    python benchmarks/seeds.py --algo sac --seeds 10 11 12 13 14 15 16 17 18 19 --parallel 2   # hours
    python benchmarks/seeds.py --algo ddpg --seeds 10 11 12 --parallel 2   # then seeds.md shows both agents
    python benchmarks/seeds.py --report-only       # rebuild seeds.md, seeds.csv and the figures from the runs
    python benchmarks/seeds.py --algo sac --seeds 10 11 --parallel 2 --quick   # smoke test: well under a minute

Each seed is one run of `DDPG/main_ddpg.py` or `SAC/main_sac.py` in a process of its own, --parallel at a time,
with the script's DEFAULT flags plus `--seed N --threads T --max-steps S` (and --our-args): no --stop-score, so a
run uses its whole budget as a default user run does (300,000 env steps or 1,000 episodes, whichever comes first).
Then the same script evaluates the run's best/ (`--evaluate E --seed N`: E deterministic episodes, default 100).

Measured per seed, from the run's scores CSV (episode, env_steps, score, avg100, minutes): solved or not (the
100-episode mean reaches 200, with at least 100 episodes), env steps and minutes at the first episode where it
did, env steps a second over the whole run (so minutes from different machines can be judged), the best and the
final 100-episode mean (over episodes 100 on: empty for a run of fewer episodes); from its _eval.csv: the best mean
of the deterministic evaluations during training (what picked best/), its env steps, and the share of the run's
time they took; and the final evaluation's mean +- std and how many of its episodes scored below 200. Per agent:
the solve rate, the median and worst env steps and minutes to solve over the solved seeds, the median and lowest
evaluation mean, and the evaluations' share of a run's time.

Writes, under --out (default benchmarks/results/): seeds.md (a table per agent and its summary), seeds.csv (a row
per (algo, seed)), seeds_<algo>.png (each seed's 100-episode mean against env steps, and their median), and each
run's folder seeds_runs/<algo>_seed<N>/ (its --plot-dir: scores CSV, curves, train.log, evaluate.log, run.json).
Checkpoints go to a scratch folder outside the repository and are deleted after the evaluation. Rows merge by
(algo, seed): a new run replaces that row only, so the rows of the other agent (and of other seeds) stay.
--report-only rebuilds the rows of the run folders on disk and merges them the same way (a row whose folder is
gone stays: delete its line from seeds.csv to drop it, as for a sweep stopped part-way); --quick (1,500 env steps,
500 random, 32x32 networks, 2 evaluation episodes during training and after) writes seeds_quick.* and
seeds_quick_runs/ so it never touches the real results.

Ctrl-C or SIGTERM stops the runs cleanly (each gets one SIGTERM: it saves and writes its scores CSV), skips the
evaluations not yet done, and writes the report of what there is; such a run is marked "stopped early" and left
out of the summary. A second Ctrl-C stops the runs at once. The runs sit in sessions of their own, so a terminal's
Ctrl-C reaches them only through this script, once.

Seeds: 0-9 are for tuning (time_to_solve.py's runs use 0-2), seeds 10 and up are held out for reporting. The
project reports held-out seeds only: a report that includes a seed below 10 says so in its summary.
"""
import argparse
import csv
import datetime
import json
import math
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from time_to_solve import ENV_ID, OURS, ROOT, SOLVED, invocation, read_episodes, solved_at

from rlharness.signals import StopRequest

HELD_OUT = 10  # seeds below this are for tuning
MAX_STEPS = 300_000  # the scripts' default --max-steps
EVAL_FLAGS = ("--env", "--device")  # flags of --our-args that --evaluate takes too (all others are training flags)
QUICK = dict(max_steps=1_500, evaluate=2, our_args="--learning-starts 500 --fc1-dims 32 --fc2-dims 32 "
                                                   "--batch-size 32 --eval-episodes 2")
EVAL_MEAN = re.compile(r"mean score (\S+) \+- (\S+) over (\d+) episodes")
EVAL_EPISODE = re.compile(r"evaluation episode +\d+ score +(\S+)")
COLUMNS = ["algo", "seed", "status", "episodes", "env_steps", "minutes", "steps_per_second", "solved", "solve_episode",
           "solve_env_steps", "solve_minutes", "best_avg100", "final_avg100", "evaluations", "best_evaluation",
           "best_evaluation_env_steps", "evaluation_share", "eval_mean", "eval_std", "eval_episodes", "eval_below",
           "max_steps", "our_args", "command", "machine", "torch", "date"]
INTS = ("seed", "episodes", "env_steps", "solve_episode", "solve_env_steps", "evaluations", "best_evaluation_env_steps",
        "eval_episodes", "eval_below", "max_steps")
FLOATS = ("minutes", "steps_per_second", "solve_minutes", "best_avg100", "final_avg100", "best_evaluation",
          "evaluation_share", "eval_mean", "eval_std")


# ---------------------------------------------------------------------------------------------------------
# The runs: per seed, train and then evaluate, --parallel seeds at a time
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Job:
    algo: str
    seed: int
    folder: Path  # <out>/seeds_runs/<algo>_seed<N>/: the run's --plot-dir
    extra: tuple[str, ...] = ()  # flags of this job alone, after --our-args (benchmarks/claims.py's switches)
    phase: str = "waiting"  # waiting, training, evaluating, done
    process: subprocess.Popen | None = None
    scratch: tempfile.TemporaryDirectory | None = None  # --chkpt-dir, outside the repository
    signalled: int = 0

    @property
    def name(self) -> str:
        return self.folder.name  # <algo>_seed<N> here; claims.py's folders name the arm too


def machine() -> str:
    model = platform.processor()
    if not model or model == platform.machine():  # Linux gives the architecture: the model is in /proc/cpuinfo
        try:
            found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
            model = found.group(1).strip() if found else model
        except OSError:
            pass
    return f"{os.cpu_count()} CPUs, {model or platform.machine()}"


def stack() -> str:
    """The env package the runs use and its version, e.g. gymnasium 1.4.0 (rlharness.envs picks it the same way)."""
    names = ("gym",) if os.environ.get("RLHARNESS_GYM") == "gym" else ("gymnasium", "gym")
    for name in names:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            pass
    return "no env package"


def eval_args(our_args: list[str]) -> list[str]:
    """The flags of --our-args that --evaluate accepts (--env X, --device X); the others are training flags."""
    kept, i = [], 0
    while i < len(our_args):
        name = our_args[i].split("=")[0]
        takes_value = "=" not in our_args[i] and i + 1 < len(our_args) and not our_args[i + 1].startswith("--")
        if name in EVAL_FLAGS:
            kept += our_args[i:i + 1 + takes_value]
        i += 1 + takes_value
    return kept


def spawn(job: Job, cmd: list[str], log_name: str) -> None:
    """Start `cmd` in a session of its own (a terminal's Ctrl-C reaches it only through us), output to the log."""
    with open(job.folder / log_name, "w") as log:
        job.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def start_training(job: Job, args: argparse.Namespace, meta: dict) -> None:
    job.folder.mkdir(parents=True, exist_ok=True)
    for old in job.folder.iterdir():  # a fresh run: nothing of an earlier one may pass for this one's
        if old.is_file():
            old.unlink()
    job.scratch = tempfile.TemporaryDirectory(prefix=f"seeds_{job.name}_")
    cmd = [sys.executable, "-u", str(OURS[job.algo]), "--seed", str(job.seed), "--threads", str(args.threads),
           "--max-steps", str(args.max_steps), "--chkpt-dir", job.scratch.name, "--plot-dir", str(job.folder),
           *shlex.split(args.our_args), *job.extra]
    run = dict(meta, algo=job.algo, seed=job.seed, **({"extra": shlex.join(job.extra)} if job.extra else {}))
    (job.folder / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    spawn(job, cmd, "train.log")
    job.phase = "training"
    print(f"started {job.name}", flush=True)


def start_evaluation(job: Job, args: argparse.Namespace) -> bool:
    """Evaluate the run's best/ (False if it saved none, or args.evaluate is 0)."""
    if not args.evaluate or not (Path(job.scratch.name) / "best").is_dir():
        return False
    cmd = [sys.executable, "-u", str(OURS[job.algo]), "--evaluate", str(args.evaluate), "--seed", str(job.seed),
           "--threads", str(args.threads), "--chkpt-dir", job.scratch.name, "--plot-dir", str(job.folder),
           *eval_args(shlex.split(args.our_args))]
    spawn(job, cmd, "evaluate.log")
    job.phase = "evaluating"
    print(f"evaluating {job.name} ({args.evaluate} episodes)", flush=True)
    return True


def done(job: Job) -> None:
    job.scratch.cleanup()  # the checkpoints: never left in the results
    job.phase = "done"
    print(f"finished {job.name}", flush=True)


def run_jobs(jobs: list[Job], args: argparse.Namespace, meta: dict) -> None:
    """Train and evaluate every job, args.parallel at a time. Ctrl-C or SIGTERM: one SIGTERM to each training run
    (it saves and writes its CSVs), the evaluations and the jobs not started are dropped; a second one: a second
    SIGTERM (the runs stop at once)."""
    waiting, running = list(jobs), []
    with StopRequest() as stop:
        while waiting or running:
            try:
                while waiting and len(running) < args.parallel and not stop:
                    job = waiting.pop(0)
                    start_training(job, args, meta)
                    running.append(job)
                if stop and waiting:
                    print(f"{stop.signal_name}: stopping the runs; not started: "
                          f"{', '.join(j.name for j in waiting)}", flush=True)
                    waiting.clear()
                for job in running:
                    if stop and not job.signalled:
                        job.process.send_signal(signal.SIGTERM)  # an evaluation just ends: nothing to save
                        job.signalled = 1
                time.sleep(0.2)
                for job in list(running):
                    if job.process.poll() is None:
                        continue
                    if job.phase == "training" and not stop and start_evaluation(job, args):
                        continue
                    done(job)
                    running.remove(job)
            except KeyboardInterrupt:  # the second signal
                for job in running:
                    if job.signalled < 2 and job.process.poll() is None:
                        job.process.send_signal(signal.SIGTERM)
                        job.signalled = 2


# ---------------------------------------------------------------------------------------------------------
# Results: a row per run folder, merged into seeds.csv by (algo, seed); seeds.md; the figures
# ---------------------------------------------------------------------------------------------------------
def summarise(episodes: list[dict]) -> dict:
    """The run's numbers from its scores CSV: solved at the first episode (of at least 100) with avg100 >= 200."""
    hit = solved_at(episodes)
    full = [e["avg100"] for e in episodes if e["episode"] >= 100]  # true 100-episode means
    last = episodes[-1] if episodes else None
    speed = last["env_steps"] / (60 * last["minutes"]) if last and last["minutes"] else None
    return dict(episodes=len(episodes), env_steps=int(last["env_steps"]) if last else 0,
                minutes=last["minutes"] if last else None, steps_per_second=speed, solved=hit is not None,
                solve_episode=int(hit["episode"]) if hit else None,
                solve_env_steps=int(hit["env_steps"]) if hit else None, solve_minutes=hit["minutes"] if hit else None,
                best_avg100=max(full) if full else None, final_avg100=full[-1] if full else None)


def evaluations_during_training(eval_csv: Path, minutes: float | None) -> dict:
    """From the run's _eval.csv (the deterministic evaluations that chose best/): how many, the best mean (what
    best/ holds) and its env steps, and the share of the run's wall-clock time they took."""
    if not eval_csv.is_file():
        return dict(evaluations=None, best_evaluation=None, best_evaluation_env_steps=None, evaluation_share=None)
    with open(eval_csv, newline="") as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    best = max(rows, key=lambda r: r["mean"]) if rows else None  # the first of the best, as best/ saves
    seconds = sum(r["seconds"] for r in rows)
    return dict(evaluations=len(rows), best_evaluation=best["mean"] if best else None,
                best_evaluation_env_steps=int(best["env_steps"]) if best else None,
                evaluation_share=seconds / (60 * minutes) if minutes else None)


def evaluation(log: Path) -> dict:
    """The evaluation's mean, std, episodes and episodes below 200, from the lines --evaluate prints."""
    text = log.read_text() if log.is_file() else ""
    found = EVAL_MEAN.search(text)
    if not found:
        return dict(eval_mean=None, eval_std=None, eval_episodes=None, eval_below=None)
    scores = [float(s) for s in EVAL_EPISODE.findall(text)]
    return dict(eval_mean=float(found.group(1)), eval_std=float(found.group(2)), eval_episodes=int(found.group(3)),
                eval_below=sum(s < SOLVED for s in scores))


def folder_row(folder: Path, algo: str, seed: int) -> dict | None:
    """The (algo, seed) row from a run folder: its scores CSV, train.log, evaluate.log and run.json."""
    scores = folder / f"{algo}_{ENV_ID}.csv"
    if not scores.is_file():
        return None
    meta = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
    log = folder / "train.log"
    stopped = log.is_file() and "stopped by SIG" in log.read_text()
    summarised = summarise(read_episodes(scores))
    row = dict(algo=algo, seed=seed, status="stopped early" if stopped else "complete", **summarised,
               **evaluations_during_training(folder / f"{algo}_{ENV_ID}_eval.csv", summarised["minutes"]),
               **evaluation(folder / "evaluate.log"))
    row.update({k: meta.get(k) for k in ("max_steps", "our_args", "command", "machine", "torch", "date")})
    return row


def run_folders(runs_dir: Path, algos: list[str], seeds: list[int] | None) -> list[tuple[Path, str, int]]:
    found = []
    for folder in sorted(runs_dir.glob("*_seed*")):
        algo, _, seed = folder.name.rpartition("_seed")
        if algo in algos and seed.isdigit() and (seeds is None or int(seed) in seeds):
            found.append((folder, algo, int(seed)))
    return found


def read_rows(csv_file: Path) -> list[dict]:
    if not csv_file.is_file():
        return []
    with open(csv_file, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in COLUMNS:
            value = r.get(k) or None
            r[k] = (int(value) if k in INTS else float(value) if k in FLOATS else value == "True" if k == "solved"
                    else value) if value is not None else None
    return rows


def write_rows(rows: list[dict], csv_file: Path, columns: list[str] = COLUMNS) -> None:
    """The rows' `columns` as a CSV: None as an empty cell, floats to 4 decimals."""
    with open(csv_file, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r.get(k) is None else f"{r[k]:.4f}" if isinstance(r[k], float) else r[k]
                             for k in columns})


def seed_ranges(seeds: list[int]) -> str:
    """10-19, or 10-12, 15 for seeds with gaps."""
    parts, seeds = [], sorted(seeds)
    for s in seeds:
        if parts and s == parts[-1][1] + 1:
            parts[-1][1] = s
        else:
            parts.append([s, s])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in parts) or "none"


def number(x: float | None, fmt: str = ",.0f") -> str:
    """x formatted, "-" for none; a mean that rounds to zero reads 0.0, not -0.0."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    text = format(x, fmt)
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def outcomes(rows: list[dict]) -> tuple[list[dict], list[dict], list[float]]:
    """An agent's complete runs, the solved ones among them, and the best/ evaluation means of all complete runs."""
    complete = [r for r in rows if r["status"] == "complete"]
    return (complete, [r for r in complete if r["solved"]],
            [r["eval_mean"] for r in complete if r["eval_mean"] is not None])


def summary(algo: str, rows: list[dict]) -> list[str]:
    """The agent's summary lines: solve rate, steps and minutes to solve, evaluation means, how it was run."""
    complete, solved, evaluated = outcomes(rows)
    changed = sorted({" ".join(([f"--max-steps {r['max_steps']}"] if r["max_steps"] not in (None, MAX_STEPS) else [])
                               + ([r["our_args"]] if r["our_args"] else [])) for r in rows})
    label = "defaults" if changed in ([], [""]) else "defaults + " + "; ".join(c or "nothing" for c in changed)
    lines = [f"{algo} ({label}, seeds {seed_ranges([r['seed'] for r in complete])}): "
             f"solve rate: {len(solved)}/{len(complete)}", ""]
    if solved:
        steps, minutes = [r["solve_env_steps"] for r in solved], [r["solve_minutes"] for r in solved]
        means = [r["eval_mean"] for r in solved if r["eval_mean"] is not None]
        lines += [f"- env steps to solve (solved seeds): median {statistics.median(steps):,.0f}, worst {max(steps):,}",
                  f"- minutes to solve (solved seeds): median {statistics.median(minutes):.1f}, "
                  f"worst {max(minutes):.1f}",
                  f"- evaluation mean (solved seeds): median {statistics.median(means):.1f}, minimum {min(means):.1f}"
                  if means else "- evaluation mean (solved seeds): none evaluated"]
    else:
        lines += ["- env steps and minutes to solve (solved seeds): none solved",
                  "- evaluation mean (solved seeds): none solved"]
    if evaluated:
        lines.append(f"- evaluation mean (all seeds): median {statistics.median(evaluated):.1f}, "
                     f"minimum {min(evaluated):.1f}")
    if timed := [r["env_steps"] / (60 * r["minutes"]) for r in complete if r.get("minutes")]:
        lines.append(f"- training speed (a reference for the machine on the dates below): {min(timed):.0f} to "
                     f"{max(timed):.0f} env steps a second a run over its whole budget, median "
                     f"{statistics.median(timed):.0f}")
    if shares := [r["evaluation_share"] for r in complete if r.get("evaluation_share") is not None]:
        lines.append(f"- evaluation during training (which picks best/): {100 * statistics.median(shares):.1f}% of a "
                     f"run's time (median; at most {100 * max(shares):.1f}%)")
    if stopped := [r for r in rows if r["status"] != "complete"]:
        lines.append(f"- left out, stopped early: seeds {seed_ranges([r['seed'] for r in stopped])}")
    if tuning := [r["seed"] for r in rows if r["seed"] < HELD_OUT]:
        lines.append(f"- NOT a held-out report: seeds {seed_ranges(tuning)} are tuning seeds (0-{HELD_OUT - 1})")
    for key, what in (("command", "command"), ("machine", "machine"), ("torch", "versions"), ("date", "date")):
        values = sorted({r[key] or "unknown" for r in rows})
        lines.append(f"- {what}: " + "; ".join(f"`{v}`" if key == "command" else v for v in values))
    return lines


def glance(rows: list[dict]) -> list[str]:
    """One row an agent over its complete runs: solve rate, env steps to solve, best/'s evaluation (all seeds)."""
    lines = ["| agent | seeds | solved | median env steps to solve | worst env steps to solve "
             "| best/ evaluated: median | best/ evaluated: lowest |", "|---|---|---|---|---|---|---|"]
    for algo in dict.fromkeys(r["algo"] for r in rows):
        complete, solved, means = outcomes([r for r in rows if r["algo"] == algo])
        steps = [r["solve_env_steps"] for r in solved]
        lines.append(f"| {algo} | {seed_ranges([r['seed'] for r in complete])} | "
                     f"{len(steps)}/{len(complete)} | {number(statistics.median(steps) if steps else None)} | "
                     f"{number(max(steps) if steps else None)} | "
                     f"{number(statistics.median(means) if means else None, '.1f')} | "
                     f"{number(min(means) if means else None, '.1f')} |")
    return lines


def markdown(rows: list[dict], title: str) -> str:
    lines = [title, "", *glance(rows), ""]
    for algo in dict.fromkeys(r["algo"] for r in rows):
        mine = [r for r in rows if r["algo"] == algo]
        lines += [f"## {algo}", "", "| seed | solved | env steps to solve | minutes to solve | env steps/s "
                  "| best 100-episode mean | final 100-episode mean | best evaluation during training (at env steps) "
                  "| best/ evaluated: mean +- std | evaluation episodes below 200 |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in mine:
            solved = "yes" if r["solved"] else "no"
            if r["status"] != "complete":
                solved += f" (stopped early, {r['env_steps']:,} env steps)"
            evaluated = "-" if r["eval_mean"] is None else f"{r['eval_mean']:.1f} +- {r['eval_std']:.1f}"
            below = "-" if r["eval_below"] is None else f"{r['eval_below']}/{r['eval_episodes']}"
            during = "-" if r.get("best_evaluation") is None else \
                f"{r['best_evaluation']:.1f} ({r['best_evaluation_env_steps']:,})"
            lines.append(f"| {r['seed']} | {solved} | {number(r['solve_env_steps'])} | "
                         f"{number(r['solve_minutes'], '.1f')} | {number(r.get('steps_per_second'))} | "
                         f"{number(r['best_avg100'], '.1f')} | {number(r['final_avg100'], '.1f')} | {during} | "
                         f"{evaluated} | {below} |")
        lines += ["", *summary(algo, mine), ""]
    return "\n".join(lines)


def plot(algo: str, curves: dict[int, list[dict]], figure_file: Path) -> None:
    """Each seed's 100-episode mean against env steps (thin lines), their median (thick) and the solved line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 5))
    first = max(eps[0]["env_steps"] for eps in curves.values())  # the median spans the steps every seed reached
    grid = np.linspace(first, min(eps[-1]["env_steps"] for eps in curves.values()), 500)
    on_grid = []
    for seed, eps in sorted(curves.items()):
        steps, avg = [e["env_steps"] for e in eps], [e["avg100"] for e in eps]
        ax.plot(steps, avg, lw=0.8, alpha=0.8, label=f"seed {seed}")
        on_grid.append(np.interp(grid, steps, avg))
    ax.plot(grid, np.median(on_grid, axis=0), color="black", lw=2.5,
            label="median over seeds (to the shortest run's end)")
    ax.axhline(SOLVED, color="black", ls=":", lw=1, label=f"solved ({SOLVED:g})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean of the last 100 episodes")
    ax.set_title(f"{algo} on {ENV_ID}: {len(curves)} seed(s)")
    ax.legend(loc="lower right", fontsize="small", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(figure_file, dpi=100)
    plt.close(fig)


def report(out: Path, name: str, runs_dir: Path, folders: list[tuple[Path, str, int]]) -> str:
    """Merge the rows of `folders` into <name>.csv by (algo, seed); write <name>.md and <name>_<algo>.png."""
    merged = {(r["algo"], r["seed"]): r for r in read_rows(out / f"{name}.csv")}
    for folder, algo, seed in folders:
        if (row := folder_row(folder, algo, seed)) is not None:
            merged[algo, seed] = row
        else:
            print(f"{folder.name}: no scores CSV (the run ended before its first episode): no row", flush=True)
    order = list(OURS)
    rows = sorted(merged.values(), key=lambda r: (order.index(r["algo"]) if r["algo"] in order else 99, r["seed"]))
    write_rows(rows, out / f"{name}.csv")
    text = markdown(rows, f"Robustness across seeds on {ENV_ID}: our agents with their default flags, each seed "
                          f"trained for its whole budget, then its best/ evaluated (benchmarks/seeds.py). Solved: the "
                          f"100-episode mean reaches {SOLVED:g} (at least 100 episodes).")
    (out / f"{name}.md").write_text(text)
    for algo in dict.fromkeys(r["algo"] for r in rows):
        curves = {seed: eps for folder, a, seed in run_folders(runs_dir, [algo], None)
                  if (folder / f"{algo}_{ENV_ID}.csv").is_file()
                  and (eps := read_episodes(folder / f"{algo}_{ENV_ID}.csv"))}
        if curves:
            plot(algo, curves, out / f"{name}_{algo}.png")
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=list(OURS), help="the agent to run (with --report-only: the one to rebuild; "
                        "default all)")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"the seeds (default {HELD_OUT}-{HELD_OUT + 9}; "
                        f"0-{HELD_OUT - 1} are for tuning, report held-out ones)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time (2 on a 2-core machine)")
    parser.add_argument("--max-steps", type=int, help="env-step budget a run (default 300,000, the scripts' own)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads a run (see time_to_solve.py)")
    parser.add_argument("--evaluate", type=int, help="deterministic evaluation episodes of each run's best/ "
                        "(default 100)")
    parser.add_argument("--our-args", default="", help='extra flags for our script, e.g. "--batch-size 256"')
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1,500 env steps (500 random), 32x32 "
                        "networks, 2 evaluation episodes; writes seeds_quick.*")
    parser.add_argument("--report-only", action="store_true", help="run nothing: rebuild seeds.md, seeds.csv and "
                        "the figures from the run folders in --out")
    args = parser.parse_args(argv)
    if args.quick:
        args.max_steps = args.max_steps or QUICK["max_steps"]
        args.evaluate = args.evaluate or QUICK["evaluate"]
        args.our_args = f"{QUICK['our_args']} {args.our_args}".strip()
    args.max_steps = args.max_steps or MAX_STEPS
    args.evaluate = 100 if args.evaluate is None else args.evaluate
    if min(args.parallel, args.max_steps, args.threads, args.evaluate) < 1:
        parser.error("--parallel, --max-steps, --threads and --evaluate must be at least 1")
    if not args.report_only and args.algo is None:
        parser.error("--algo is required (unless --report-only)")
    name = "seeds_quick" if args.quick else "seeds"
    out = Path(args.out)
    runs_dir = out / f"{name}_runs"
    runs_dir.mkdir(parents=True, exist_ok=True)

    if args.report_only:
        folders = run_folders(runs_dir, [args.algo] if args.algo else list(OURS), args.seeds)
    else:
        seeds = args.seeds or list(range(HELD_OUT, HELD_OUT + 10))
        if tuning := [s for s in seeds if s < HELD_OUT]:
            print(f"seeds {seed_ranges(tuning)} are tuning seeds: the report will say it is not a held-out one",
                  flush=True)
        meta = dict(max_steps=args.max_steps, our_args=args.our_args, machine=machine(),
                    command=invocation("seeds.py", argv),
                    torch=f"torch {version('torch')}, {stack()}", date=datetime.date.today().isoformat())
        jobs = [Job(args.algo, seed, runs_dir / f"{args.algo}_seed{seed}") for seed in dict.fromkeys(seeds)]
        run_jobs(jobs, args, meta)
        folders = [(job.folder, job.algo, job.seed) for job in jobs if job.phase == "done"]
    text = report(out, name, runs_dir, folders)
    print(text, end="")
    print(f"results: {out / name}.md, .csv, {name}_<algo>.png; runs: {runs_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

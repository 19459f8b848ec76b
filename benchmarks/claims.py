"""The lecture's claims, tested: each one switched off on held-out seeds, beside the defaults, on one budget.

    python benchmarks/claims.py --parallel 2            # the four claims, seeds 10-12, 150,000 env steps: hours
    python benchmarks/claims.py --claims double_q entropy --seeds 10 11 12 --parallel 2
    python benchmarks/claims.py --report-only           # rebuild claims.md, claims.csv and the figures from the runs
    python benchmarks/claims.py --quick                 # smoke test: well under a minute a run

A claim is an agent and the flags that switch it off (CLAIMS): the double-Q trick (SAC --critics 1), target
networks (DDPG --no-target-networks), the entropy bonus (SAC --alpha 0) and exploration noise (DDPG --noise none).
Each arm of a claim is one run per seed of the agent's script with its default flags plus `--seed N --threads T
--max-steps B` (and --our-args); the switched arm adds the claim's flags.

The default arm is taken from the robustness sweep (benchmarks/seeds.py; --defaults-from, default
benchmarks/results/seeds_gymnasium/seeds_runs/) where that agent and seed ran there with default flags, to the end
of its budget, at least as far as B: a run's first B env steps do not depend on its --max-steps, so they are this
run. Its CSVs are copied cut at B, with a source.txt naming the run. Otherwise the default arm runs here.

Measured per run, up to B env steps: the last and the best 100-episode mean (episodes 100 on), env steps to solve
(the 100-episode mean reaches 200), the best mean of the deterministic evaluations during training, and the
critic's bias: the mean of (estimate - discounted return obtained) over the critic records in the second half of
the budget, for the training episodes (_q_bias.csv: exploration included) and for the deterministic episodes
(_q_bias_policy.csv; for SAC the estimate is the soft value, see docs/figures.md).

Writes, under --out (default benchmarks/results/): claims.md (a table per claim, its summary, how it was run),
claims.csv (a row per run), claims_<claim>.png (each run's 100-episode mean against env steps, and its critic's
bias on the deterministic episodes; the default arm solid, the switched dashed) and claims_runs/<arm>_<algo>_seed<N>/.
--quick (1,500 env steps, seed 10, small networks, both arms run here) writes claims_quick.* instead.
"""
import argparse
import csv
import datetime
import json
import statistics
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from seeds import QUICK, Job, folder_row, machine, run_jobs, seed_ranges, stack, summarise, write_rows
from time_to_solve import ENV_ID, ROOT, SOLVED, invocation, read_episodes

BUDGET = 150_000  # env steps a run: past the median steps to solve of both agents' defaults
SEEDS = [10, 11, 12]
DEFAULT_EPISODES = 1000  # the scripts' --episodes: a run may end there before its --max-steps
SWEEP = ROOT / "benchmarks" / "results" / "seeds_gymnasium" / "seeds_runs"
ESTIMATE = {"ddpg": "Q", "sac": "min_Q"}  # the critic record's column of the estimate the update uses


@dataclass(frozen=True)
class Claim:
    algo: str
    flags: tuple[str, ...]  # what switches the claim off
    arm: str  # the switched arm's name
    slide: str  # what the lecture claims


CLAIMS = {
    "double_q": Claim("sac", ("--critics", "1"), "one_critic",
                      "the min of two critics (the double-Q trick) counters the maximization bias"),
    "target_networks": Claim("ddpg", ("--no-target-networks",), "no_targets",
                             "slowly moving target networks make the critic's target stable"),
    "entropy": Claim("sac", ("--alpha", "0"), "no_entropy", "the entropy bonus keeps the policy exploring"),
    "noise": Claim("ddpg", ("--noise", "none"), "no_noise",
                   "DDPG explores by adding noise N to its deterministic policy"),
}
COLUMNS = ["claim", "algo", "arm", "flags", "seed", "source", "episodes", "env_steps", "final_avg100", "best_avg100",
           "solve_env_steps", "best_evaluation", "bias_training", "bias_policy", "budget", "our_args", "command",
           "machine", "versions", "date"]


def folder(runs_dir: Path, arm: str, algo: str, seed: int) -> Path:
    return runs_dir / f"{arm}_{algo}_seed{seed}"


# ---------------------------------------------------------------------------------------------------------
# The default arm from the sweep: the same run, cut at the budget
# ---------------------------------------------------------------------------------------------------------
def sweep_run(source_dir: Path, algo: str, seed: int, budget: int) -> Path | None:
    """The sweep's folder of this agent and seed if it ran with default flags, to its end, at least `budget`."""
    source = source_dir / f"{algo}_seed{seed}"
    row = folder_row(source, algo, seed) if source.is_dir() else None
    if row is None or row["status"] != "complete" or row["our_args"]:
        return None
    return source if row["env_steps"] >= budget or row["episodes"] >= DEFAULT_EPISODES else None


def cut_csv(source: Path, target: Path, budget: int) -> None:
    """Copy the rows of a CSV with env_steps <= budget (all of a file without that column)."""
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if "env_steps" not in r or float(r["env_steps"]) <= budget]
    with open(target, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(kept)


def take(source: Path, target: Path, budget: int) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        old.unlink()
    for name in sorted(p.name for p in source.glob("*.csv")):
        cut_csv(source / name, target / name, budget)
    if (source / "run.json").is_file():
        (target / "run.json").write_text((source / "run.json").read_text())
    where = source.resolve().relative_to(ROOT) if source.resolve().is_relative_to(ROOT) else source
    (target / "source.txt").write_text(f"the first {budget:,} env steps of {where}\n")


# ---------------------------------------------------------------------------------------------------------
# A run's row, the report, the figures
# ---------------------------------------------------------------------------------------------------------
def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]


def bias(rows: list[dict], estimate: str, budget: int) -> float | None:
    """Mean of estimate - real_return over the records in the second half of the budget."""
    late = [r[estimate] - r["real_return"] for r in rows if budget / 2 < r["env_steps"] <= budget]
    return statistics.fmean(late) if late else None


def run_row(name: str, claim: Claim, arm: str, seed: int, run_dir: Path, budget: int) -> dict | None:
    scores = run_dir / f"{claim.algo}_{ENV_ID}.csv"
    if not scores.is_file():
        return None
    summary = summarise([e for e in read_episodes(scores) if e["env_steps"] <= budget])  # cut at the budget
    evaluations = [r for r in read_rows(run_dir / f"{claim.algo}_{ENV_ID}_eval.csv") if r["env_steps"] <= budget]
    prefix = run_dir / f"{claim.algo}_{ENV_ID}"
    meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    source = (run_dir / "source.txt").read_text().strip() if (run_dir / "source.txt").is_file() else "run here"
    log = run_dir / "train.log"
    if log.is_file() and "stopped by SIG" in log.read_text():
        source += ", stopped early"
    return dict(claim=name, algo=claim.algo, arm=arm, flags=" ".join(claim.flags) if arm != "default" else "",
                seed=seed, source=source, **{k: summary[k] for k in ("episodes", "env_steps", "final_avg100",
                                                                     "best_avg100", "solve_env_steps")},
                best_evaluation=max(r["mean"] for r in evaluations) if evaluations else None,
                bias_training=bias(read_rows(Path(f"{prefix}_q_bias.csv")), ESTIMATE[claim.algo], budget),
                bias_policy=bias(read_rows(Path(f"{prefix}_q_bias_policy.csv")), ESTIMATE[claim.algo], budget),
                budget=budget, our_args=meta.get("our_args", ""), command=meta.get("command", "unknown"),
                machine=meta.get("machine", "unknown"), versions=meta.get("torch", "unknown"),
                date=meta.get("date", "unknown"))


def number(x, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def markdown(rows: list[dict], budget: int) -> str:
    lines = [f"# The lecture's claims on {ENV_ID}, each switched off (benchmarks/claims.py)", "",
             f"Each arm: the agent's default flags (the switched arm adds the claim's flags), {budget:,} env steps a "
             "run. Bias: the critic's estimate minus the discounted return obtained, averaged over the critic records "
             "in the second half of the budget (training episodes, with exploration; deterministic episodes).", ""]
    for name in dict.fromkeys(r["claim"] for r in rows):
        claim, mine = CLAIMS[name], [r for r in rows if r["claim"] == name]
        lines += [f"## {name}: {claim.slide}", "",
                  f"{claim.algo.upper()}, default against `{' '.join(claim.flags)}` ({claim.arm}).", "",
                  "| arm | seed | 100-episode mean at the end | best 100-episode mean | env steps to solve | best "
                  "evaluation during training | bias, training episodes | bias, deterministic episodes | source |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in mine:
            lines.append(f"| {r['arm']} | {r['seed']} | {number(r['final_avg100'])} | {number(r['best_avg100'])} | "
                         f"{number(r['solve_env_steps'], ',.0f')} | {number(r['best_evaluation'])} | "
                         f"{number(r['bias_training'])} | {number(r['bias_policy'])} | {r['source']} |")
        lines.append("")
        for arm in ("default", claim.arm):
            runs = [r for r in mine if r["arm"] == arm]
            if not runs:
                continue
            finals = [r["final_avg100"] for r in runs if r["final_avg100"] is not None]
            biases = [r["bias_policy"] for r in runs if r["bias_policy"] is not None]
            lines.append(f"- {arm} (seeds {seed_ranges([r['seed'] for r in runs])}): solved "
                         f"{sum(r['solve_env_steps'] is not None for r in runs)}/{len(runs)}; 100-episode mean at "
                         f"the end: median {number(statistics.median(finals) if finals else None)}; bias on the "
                         f"deterministic episodes: median {number(statistics.median(biases) if biases else None)}")
        lines.append("")
    for key, what in (("command", "commands"), ("machine", "machine"), ("versions", "versions"), ("date", "dates")):
        values = sorted({str(r[key]) for r in rows})
        lines.append(f"- {what}: " + "; ".join(f"`{v}`" if key == "command" else v for v in values))
    return "\n".join(lines) + "\n"


def plot(name: str, runs: list[tuple[str, int, Path]], figure_file: Path, budget: int) -> None:
    """Top: each run's 100-episode mean; bottom: its critic's bias on the deterministic episodes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    claim = CLAIMS[name]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for arm, seed, run_dir in runs:
        style = dict(color="tab:blue" if arm == "default" else "tab:red", ls="-" if arm == "default" else "--",
                     lw=1.2, alpha=0.85, label=f"{arm}, seed {seed}")
        episodes = [e for e in read_episodes(run_dir / f"{claim.algo}_{ENV_ID}.csv") if e["env_steps"] <= budget]
        top.plot([e["env_steps"] for e in episodes], [e["avg100"] for e in episodes], **style)
        records = [r for r in read_rows(run_dir / f"{claim.algo}_{ENV_ID}_q_bias_policy.csv")
                   if r["env_steps"] <= budget]
        bottom.plot([r["env_steps"] for r in records],
                    [r[ESTIMATE[claim.algo]] - r["real_return"] for r in records], **style)
    top.axhline(SOLVED, color="black", ls=":", lw=1, label=f"solved ({SOLVED:g})")
    top.set_ylabel("mean of the last 100 episodes")
    top.set_title(f"{name}: {claim.slide}\n{claim.algo.upper()}: default (solid) vs {' '.join(claim.flags)} (dashed)")
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_ylabel("critic estimate - return obtained\n(deterministic episodes)")
    bottom.set_xlabel("env steps")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(loc="lower right", fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(figure_file, dpi=100)
    plt.close(fig)


def report(out: Path, name: str, runs_dir: Path, claims: list[str], seeds: list[int], budget: int) -> str:
    rows, figures = [], {}
    for claim_name in claims:
        claim = CLAIMS[claim_name]
        for arm in ("default", claim.arm):
            for seed in seeds:
                run_dir = folder(runs_dir, arm, claim.algo, seed)
                if (row := run_row(claim_name, claim, arm, seed, run_dir, budget)) is not None:
                    rows.append(row)
                    figures.setdefault(claim_name, []).append((arm, seed, run_dir))
    write_rows(rows, out / f"{name}.csv", COLUMNS)
    text = markdown(rows, budget)
    (out / f"{name}.md").write_text(text)
    for claim_name, runs in figures.items():
        plot(claim_name, runs, out / f"{name}_{claim_name}.png", budget)
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", nargs="+", choices=list(CLAIMS), default=list(CLAIMS), help="the claims to test")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"held-out seeds (default {seed_ranges(SEEDS)})")
    parser.add_argument("--max-steps", type=int, help=f"env-step budget of every run (default {BUDGET:,})")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time (2 on a 2-core machine)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads a run")
    parser.add_argument("--our-args", default="", help="extra flags for both arms (then no default arm is taken)")
    parser.add_argument("--defaults-from", default=str(SWEEP), help="the robustness sweep's run folders")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1,500 env steps, seed 10, small "
                        "networks, both arms run here; writes claims_quick.*")
    parser.add_argument("--report-only", action="store_true", help="run nothing: rebuild the report from the runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.max_steps = args.max_steps or QUICK["max_steps"]
        args.seeds = args.seeds or [10]
        args.our_args = f"{QUICK['our_args']} {args.our_args}".strip()
    args.max_steps, args.seeds = args.max_steps or BUDGET, args.seeds or SEEDS
    if min(args.parallel, args.max_steps, args.threads) < 1:
        parser.error("--parallel, --max-steps and --threads must be at least 1")
    if tuning := [s for s in args.seeds if s < 10]:
        parser.error(f"seeds {seed_ranges(tuning)} are tuning seeds: the claims are tested on held-out seeds (10 on)")
    name = "claims_quick" if args.quick else "claims"
    out = Path(args.out)
    runs_dir = out / f"{name}_runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        jobs, meta = [], dict(max_steps=args.max_steps, our_args=args.our_args, machine=machine(),
                              command=invocation("claims.py", argv), torch=f"torch {version('torch')}, {stack()}",
                              date=datetime.date.today().isoformat())
        for claim_name in args.claims:
            claim = CLAIMS[claim_name]
            for seed in args.seeds:
                default_dir = folder(runs_dir, "default", claim.algo, seed)
                source = None if args.our_args else sweep_run(Path(args.defaults_from), claim.algo, seed,
                                                              args.max_steps)
                if source is not None:
                    take(source, default_dir, args.max_steps)
                    print(f"{default_dir.name}: taken from {source}", flush=True)
                elif not any(j.folder == default_dir for j in jobs):
                    jobs.append(Job(claim.algo, seed, default_dir))
                jobs.append(Job(claim.algo, seed, folder(runs_dir, claim.arm, claim.algo, seed), claim.flags))
        args.evaluate = 0  # the evaluations during training are enough here: no final --evaluate
        run_jobs(jobs, args, meta)
        for job in jobs:
            if job.phase != "done":
                print(f"{job.name}: not finished", flush=True)
    text = report(out, name, runs_dir, args.claims, args.seeds, args.max_steps)
    print(text, end="")
    print(f"results: {out / name}.md, .csv, {name}_<claim>.png; runs: {runs_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

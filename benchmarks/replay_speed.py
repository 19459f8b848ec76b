"""How fast this machine did the same work as an earlier one: a short replay of runs against their first run.

    python benchmarks/time_to_solve.py --algos sb3-sac sac --seeds 10 --cap-minutes 4 --out REPLAY
    python benchmarks/replay_speed.py --replay REPLAY/time_to_solve_runs \
        --against benchmarks/results/time_to_solve_same/time_to_solve_runs --out REPLAY/replay_speed.md

Runs are deterministic (the same seed takes the same episodes on any machine with the same wheels), so a replay
that stops early has done exactly the first episodes of the run it replays. For each per-episode CSV
(<algo>_seed<N>.csv, as time_to_solve.py and seeds.py write them) in --replay, this reads the same file in
--against, checks that every replayed episode has the same env steps and score there, and puts the minutes both
took to the end of the replay's last episode side by side: their ratio is how much longer this machine took for
the same work. Minutes measured on two machines (or days) can then be compared with that factor in view.
"""
import argparse
import datetime
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from time_to_solve import read_episodes  # noqa: E402

RUN_CSV = re.compile(r"^[\w-]+_seed\d+\.csv$")


def compare(replay: Path, first: Path) -> dict:
    """One row: the replay's last episode, whether the replay took the first run's path, both runs' minutes."""
    mine, theirs = read_episodes(replay), read_episodes(first)
    last = mine[-1]
    same = len(theirs) >= len(mine) and all(
        (a["env_steps"], a["score"]) == (b["env_steps"], b["score"]) for a, b in zip(mine, theirs))
    earlier = theirs[len(mine) - 1]["minutes"] if same else float("nan")
    return dict(run=replay.stem, episode=int(last["episode"]), env_steps=int(last["env_steps"]), same_path=same,
                minutes=last["minutes"], minutes_first=earlier, ratio=last["minutes"] / earlier)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", required=True, help="folder of the replayed runs' per-episode CSVs")
    parser.add_argument("--against", required=True, help="folder of the first runs' per-episode CSVs")
    parser.add_argument("--out", required=True, help="the markdown file to write")
    args = parser.parse_args(argv)
    replay, first = Path(args.replay), Path(args.against)
    pairs = [(p, first / p.name) for p in sorted(replay.glob("*.csv")) if RUN_CSV.match(p.name)]
    missing = [str(f) for _, f in pairs if not f.is_file()]
    if not pairs or missing:
        sys.exit(f"replay_speed.py: error: no run CSVs in {replay}" if not pairs else
                 f"replay_speed.py: error: no first run for {', '.join(missing)}")
    rows = [compare(*pair) for pair in pairs]
    lines = [f"Replayed runs against their first runs, {datetime.date.today()}: the minutes each took to the end of "
             "the replay's last episode. \"same path\": every replayed episode has the first run's env steps and "
             "score.",
             "", f"- replayed: {replay}", f"- first runs: {first}", "",
             "| run | episode | env steps | same path | minutes, replay | minutes, first run | replay / first |",
             "|---|---|---|---|---|---|---|"]
    compared = {True: "{minutes_first:.2f} | {ratio:.2f}x |", False: "- | - |"}
    lines += [f"| {r['run']} | {r['episode']} | {r['env_steps']:,} | {'yes' if r['same_path'] else 'no'} | "
              f"{r['minutes']:.2f} | " + compared[r["same_path"]].format(**r) for r in rows]
    argv = sys.argv[1:] if argv is None else argv
    lines += ["", f"Command: `{shlex.join(['python', 'benchmarks/replay_speed.py', *argv])}`"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

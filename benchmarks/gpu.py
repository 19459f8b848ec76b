"""Every GPU check in one go (at most about 5 minutes on an H100): the GPU tests, the update speed with and without
the CUDA graph, SAC's env steps per second on HalfCheetah-v4, and SAC's time to solve LunarLander on the GPU.

    python benchmarks/gpu.py                 # on a GPU machine: writes benchmarks/results/gpu.md
    python benchmarks/gpu.py --dry-run       # on any machine, CPU only, tiny settings: checks this script

Parts, each a subprocess whose output is kept (a part that fails is reported, and the others still run):
1. `pytest tests/test_gpu.py`: graph replays equal eager updates, the device buffer, checkpoints across devices.
2. `benchmarks/update_speed.py --device cuda`: updates/s eager, as a CUDA graph, and on one CPU thread.
3. SAC on HalfCheetah-v4 at 256x256, batch 256, `--device cuda`: env steps/s over the learning phase (from the
   run's scores CSV: the steps and minutes between the first episode after --learning-starts and the last).
4. SAC with its defaults and `--device cuda` on held-out seeds (10 and up), all at once, each stopped at a
   100-episode mean of 200 or at --solve-minutes: the median minutes to solve.
The dry run does each part on the CPU with tiny budgets and writes into a scratch folder (--out to keep it).
"""
import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from time_to_solve import OURS, ROOT, invocation, read_episodes, solved_at


def run(command: list[str], timeout: float, log: Path) -> tuple[int, float]:
    """Run `command` in the repository, its output into `log`; returns (exit code, seconds). Past `timeout` it
    gets SIGTERM (our mains save and exit), and 30 s later SIGKILL."""
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
    return code, time.perf_counter() - start


def learning_rate(csv_file: Path, learning_starts: int) -> float | None:
    """Env steps per second between the first episode that ends after learning_starts and the last episode."""
    episodes = read_episodes(csv_file) if csv_file.is_file() else []
    learning = [e for e in episodes if e["env_steps"] > learning_starts]
    if len(learning) < 2 or learning[-1]["minutes"] <= learning[0]["minutes"]:
        return None
    return (learning[-1]["env_steps"] - learning[0]["env_steps"]) / (60 * (learning[-1]["minutes"]
                                                                           - learning[0]["minutes"]))


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text().strip().splitlines()[-lines:]) if log.is_file() else "(no output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU only, tiny budgets, into a scratch folder")
    parser.add_argument("--device", default="cuda", help="the GPU to use (cuda or cuda:N)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12], help="held-out seeds for part 4")
    parser.add_argument("--solve-minutes", type=float, default=2.5, help="part 4's cap per run (all run at once)")
    parser.add_argument("--cheetah-steps", type=int, default=35_000, help="part 3's env steps (5,000 random first)")
    parser.add_argument("--out", help="folder for gpu.md and the runs (default benchmarks/results/, or a scratch "
                        "folder with --dry-run)")
    args = parser.parse_args(argv)
    dry = args.dry_run
    device = "cpu" if dry else args.device
    if not dry and not torch.cuda.is_available():
        print("no CUDA device here: run with --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    out = Path(args.out or (tempfile.mkdtemp(prefix="gpu_dry_run_") if dry else ROOT / "benchmarks" / "results"))
    runs = out / ("gpu_dry_run_runs" if dry else "gpu_runs")
    runs.mkdir(parents=True, exist_ok=True)
    python, report = sys.executable, []

    # 1. the GPU tests
    code, seconds = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_gpu.py"], 240,
                        runs / "tests.log")
    report += ["## GPU tests", "", f"`pytest -q tests/test_gpu.py`: exit code {code}, {seconds:.0f} s", "",
               "```", tail(runs / "tests.log", 5), "```", ""]

    # 2. update speed: eager, CUDA graph, one CPU thread
    speed = [python, "benchmarks/update_speed.py", "--device", device, "--out", str(runs)]
    speed += ["--repeats", "1", "--updates", "3"] if dry else ["--repeats", "5", "--updates", "300"]
    code, seconds = run(speed, 180, runs / "update_speed.log")
    table = (runs / "update_speed_cuda.md").read_text() if code == 0 else f"failed ({code}):\n\n" + tail(
        runs / "update_speed.log")
    report += ["## Update speed", "", f"`{shlex.join(speed[1:])}` ({seconds:.0f} s)", "", table, ""]

    # 3. SAC on HalfCheetah-v4, 256x256, batch 256: env steps per second while learning
    steps, starts, env = (2_500, 500, "HalfCheetah-v4") if dry else (args.cheetah_steps, 5_000, "HalfCheetah-v4")
    cheetah_dir = runs / "halfcheetah"
    cheetah = [python, str(OURS["sac"]), "--env", env, "--fc1-dims", "256", "--fc2-dims", "256", "--batch-size",
               "256", "--learning-starts", str(starts), "--max-steps", str(steps), "--device", device,
               "--seed", "10", "--chkpt-dir", str(cheetah_dir / "tmp"), "--plot-dir", str(cheetah_dir)]
    code, seconds = run(cheetah, 240, runs / "halfcheetah.log")
    rate = learning_rate(cheetah_dir / f"sac_{env}.csv", starts)
    report += ["## SAC on HalfCheetah-v4 (256x256, batch 256)", "", f"`{shlex.join(cheetah[1:])}`", "",
               f"exit code {code}, {seconds:.0f} s; learning phase: "
               + (f"**{rate:,.0f} env steps/s**" if rate else "no rate (see halfcheetah.log)"), ""]

    # 4. SAC's time to solve LunarLander on the device, held-out seeds, all at once
    cap = 0.2 if dry else args.solve_minutes
    jobs = []
    for seed in args.seeds:
        folder = runs / f"solve_seed{seed}"
        command = [python, str(OURS["sac"]), "--seed", str(seed), "--device", device, "--stop-score", "200",
                   "--chkpt-dir", str(folder / "tmp"), "--plot-dir", str(folder)]
        command += ["--max-steps", "1500", "--learning-starts", "500"] if dry else []
        log = (folder / "train.log")
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((seed, folder, command, subprocess.Popen(command, cwd=ROOT, stdout=log.open("w"),
                                                             stderr=subprocess.STDOUT)))
    deadline = time.perf_counter() + cap * 60
    rows, minutes = ["| seed | solved | env steps to solve | minutes to solve |", "|---|---|---|---|"], []
    for seed, folder, _command, process in jobs:
        try:
            process.wait(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
        hit = solved_at(read_episodes(folder / "sac_LunarLanderContinuous-v2.csv")) if (
            folder / "sac_LunarLanderContinuous-v2.csv").is_file() else None
        if hit:
            minutes.append(hit["minutes"])
        steps_to_solve = f"{hit['env_steps']:,.0f}" if hit else "-"
        minutes_to_solve = f"{hit['minutes']:.2f}" if hit else f"not within {cap:g}"
        rows.append(f"| {seed} | {'yes' if hit else 'no'} | {steps_to_solve} | {minutes_to_solve} |")
    median = f"{statistics.median(minutes):.2f} min over {len(minutes)} solved" if minutes else "none solved"
    report += [f"## SAC time to solve LunarLanderContinuous-v2 on the device (defaults, seeds "
               f"{', '.join(map(str, args.seeds))}, run at once, cap {cap:g} min each)", "",
               f"`{shlex.join(jobs[0][2][1:])}` (and the other seeds)", "", *rows, "", f"median: {median}", ""]

    name = torch.cuda.get_device_name(device) if not dry else "none (dry run on the CPU)"
    header = [f"# GPU checks{' (DRY RUN on the CPU: the figures mean nothing)' if dry else ''}", "",
              f"- command: `{invocation('gpu.py', argv)}`",
              f"- GPU: {name}; host: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
              f"- torch {torch.__version__}, Python {platform.python_version()}",
              f"- date: {datetime.date.today().isoformat()}", ""]
    (out / ("gpu_dry_run.md" if dry else "gpu.md")).write_text("\n".join(header + report))
    print("\n".join(header + report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

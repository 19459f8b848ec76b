"""Wall-clock minutes and env steps until the 100-episode mean reaches 200 on LunarLanderContinuous: ours and SB3's.

    python benchmarks/time_to_solve.py                    # ddpg sac sb3-sac sb3-td3, seeds 0-2, 30-minute cap (hours)
    python benchmarks/time_to_solve.py --parallel 2       # two runs at a time, one per core of a 2-core machine
    python benchmarks/time_to_solve.py --algos sac sb3-sac --seeds 0 --cap-minutes 40
    python benchmarks/time_to_solve.py --quick            # seed 0, 3,000 env steps or 20 s a run: under two minutes
    python benchmarks/time_to_solve.py --seeds 10 11 12 --ours-from benchmarks/results/seeds_runs --parallel 2

Each (algo, seed) is a job in its own process, with the same torch thread count (--threads) on both sides:
- ours: `DDPG/main_ddpg.py` or `SAC/main_sac.py` with their default flags plus `--seed N --stop-score 200 --threads T`
  (and --our-args), stopped with SIGTERM at the cap (the script then saves, writes its scores CSV and exits 0);
- SB3's SAC, TD3 or DDPG with the rl-baselines3-zoo hyperparameters for this env (ZOO below: sb3-sac, sb3-td3,
  sb3-ddpg), or with our scripts' own defaults as far as SB3 allows (our_settings below: sb3-sac-ours, sb3-td3-ours,
  sb3-ddpg-ours), run by this script itself (`--run-sb3 sac --seed N ...`), stopped by a callback at a
  100-episode mean of 200, or by SIGTERM at the cap;
- or, with --ours-from DIR, ours are not run again: each is read from benchmarks/seeds.py's run of that seed
  (DIR/<algo>_seed<N>/, a full-budget run with the defaults, one thread, two at a time), or from this script's
  earlier run of it (DIR is a time_to_solve_runs folder: ours with the defaults ran for the same-settings table
  serve the own-settings one), up to the cap. A run's episodes do not depend on --stop-score (it only ends the
  run), so up to its solve point it is the run this script would make; only its minutes are another measurement
  of the same work.

Two ratios, each its own table: "own settings" (SB3 with the zoo's settings against ours with our defaults: what a
user gets by default) and "same settings" (SB3 with our settings against ours: what the code's speed buys).

Equal env dynamics and cost: SB3 trains on our env (rlharness.envs.make_env: gymnasium's LunarLanderContinuous-v3,
or on gym 0.26.2 its -v2 with the exhaust particles freed after each step), behind a small gymnasium adapter
(GymnasiumLander). The results committed before the move to gymnasium ran on gym 0.26.2, as their headers say.

Minutes are each run's training time (from its first env step) at the end of the episode that reached the mean
of 200; a run that did not get there counts at the cap, marked ">". Writes time_to_solve.csv, time_to_solve.md and
time_to_solve.png under --out (default benchmarks/results/; --quick writes time_to_solve_quick.*), and each run's
episodes (episode, env_steps, score, avg100, minutes) and log under <name>_runs/.

One torch thread a run by default: on this project's 2-core machine two threads made one update at most 1.6x
faster even with the machine to itself (benchmarks/results/update_speed.md), and a run also steps the env and
picks actions on one thread, so two one-thread runs at a time (--parallel 2) use both cores better than one
two-thread run; both sides get the same count either way. SB3 is a benchmark-only dependency
(`pip install -r requirements.txt -r benchmarks/requirements.txt`); without it the SB3 algos are skipped with one line.
"""
import argparse
import contextlib
import datetime
import importlib.util
import io
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_ID = "LunarLanderContinuous-v2"
SOLVED = 200.0
OURS = {"ddpg": ROOT / "DDPG" / "main_ddpg.py", "sac": ROOT / "SAC" / "main_sac.py"}
SB3 = ("sb3-sac", "sb3-td3", "sb3-ddpg", "sb3-sac-ours", "sb3-td3-ours", "sb3-ddpg-ours")
# SB3's algo against ours, for the ratios: with each side's own settings, and with SB3 run at our settings
PAIRS = {"own settings": [("sb3-sac", "sac"), ("sb3-td3", "ddpg"), ("sb3-ddpg", "ddpg")],
         "same settings": [("sb3-sac-ours", "sac"), ("sb3-td3-ours", "ddpg"), ("sb3-ddpg-ours", "ddpg")]}
COLOURS = {"ddpg": "tab:blue", "sac": "tab:orange", "sb3-sac": "tab:red", "sb3-td3": "tab:green",
           "sb3-ddpg": "tab:purple", "sb3-sac-ours": "tab:pink", "sb3-td3-ours": "tab:olive",
           "sb3-ddpg-ours": "tab:cyan"}

# rl-baselines3-zoo's hyperparameters for LunarLanderContinuous (hyperparams/sac.yml, td3.yml and ddpg.yml; the
# zoo lists them under -v2 and, since gymnasium 1.0, -v3). lin_7.3e-4 is a learning rate falling linearly from
# 7.3e-4 to 0 over n_timesteps. Older zoo versions ran TD3/DDPG with train_freq [1, "episode"] and gradient_steps -1:
# the same number of updates, run at the end of each episode instead of after each step.
ZOO = {
    "sac": dict(n_timesteps=500_000, batch_size=256, learning_rate="lin_7.3e-4", buffer_size=1_000_000,
                ent_coef="auto", gamma=0.99, tau=0.01, train_freq=1, gradient_steps=1, learning_starts=10_000,
                net_arch=[400, 300]),
    "td3": dict(n_timesteps=300_000, gamma=0.98, buffer_size=200_000, learning_starts=10_000, noise_std=0.1,
                gradient_steps=1, train_freq=1, learning_rate=1e-3, net_arch=[400, 300]),
}
ZOO["ddpg"] = ZOO["td3"]


def invocation(script: str, argv: list[str] | None) -> str:
    """The command line to record beside a benchmark's results: `python benchmarks/<script> <args>`, with the args
    main() was given (or, for None, the process's own), quoted so that it can be pasted back into a shell."""
    return shlex.join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])


def script_module(algo: str, name: str):
    """Module `name` of DDPG/ or SAC/ (main_ddpg, ddpg_torch, ...), imported afresh: both folders hold flat modules
    of the same names (buffer, networks, ...), so those loaded from the other folder are evicted first (as
    tests/conftest.py does)."""
    folder = ROOT / ("SAC" if algo == "sac" else "DDPG")
    for flat in ("utils", "buffer", "networks", "noise", "ddpg_torch", "sac_torch", "main_ddpg", "main_sac"):
        sys.modules.pop(flat, None)
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def our_settings(algo: str) -> dict:
    """SB3's settings for `<algo>-ours`: our script's current defaults (its Config), in SB3's terms.

    Matched: network sizes, batch, buffer, gamma, tau, warm-up, one update per env step, learning rates (SAC: one
    rate for pi, Q and alpha, as ours; DDPG and TD3: the actor's and the critic's own, set per optimiser by
    OwnRates below, as SB3 takes one rate), SAC's automatic alpha towards -|A| from alpha = 1, DDPG's OU noise
    (sigma, theta, dt; reset each episode). Not matched: SB3's critic takes the action at its input layer (ours
    at DDPG's second layer), and TD3 keeps its own delayed policy updates and target smoothing.
    """
    config = script_module(algo, f"main_{algo}").Config()
    settings = dict(n_timesteps=config.max_steps, batch_size=config.batch_size, buffer_size=config.buffer_size,
                    gamma=config.gamma, tau=config.tau, train_freq=1, gradient_steps=1,
                    learning_starts=config.learning_starts, net_arch=[config.fc1_dims, config.fc2_dims])
    if algo == "sac":
        assert config.lr_actor == config.lr_critic == config.lr_alpha and config.alpha == "auto"
        assert config.target_entropy == "auto" and config.update_every == 1
        return dict(settings, learning_rate=config.lr_actor, ent_coef="auto")
    assert config.noise == "ou" and not config.layer_norm and config.critic_weight_decay == 0
    return dict(settings, learning_rate=config.lr_critic, lr_actor=config.lr_actor,
                ou=dict(sigma=config.sigma, theta=config.theta, dt=config.dt))


def sb3_settings(algo: str) -> dict:
    """The settings SB3's `algo` (as --run-sb3 takes it: sac, td3-ours, ...) runs with: the zoo's, or for
    `<algo>-ours` those of the agent of ours it is paired with in PAIRS (td3-ours and ddpg-ours take our DDPG's)."""
    ours = {sb3.removeprefix("sb3-"): mine for sb3, mine in PAIRS["same settings"]}
    return our_settings(ours[algo]) if algo in ours else dict(ZOO[algo])


QUICK = dict(cap_minutes=20 / 60, seeds=[0], max_steps=3_000, learning_starts=1_000)


# ---------------------------------------------------------------------------------------------------------
# SB3's side: one run in this process (`--run-sb3 ALGO`)
# ---------------------------------------------------------------------------------------------------------
def sb3_installed() -> bool:
    return importlib.util.find_spec("stable_baselines3") is not None


def write_episodes(path: Path, rows: list[tuple[int, int, float, float, float]]) -> None:
    """The scores CSV in our scripts' columns: episode, env_steps, score, avg100, minutes."""
    lines = ["episode,env_steps,score,avg100,minutes"]
    lines += [f"{e},{t},{s:.4f},{a:.4f},{m:.4f}" for e, t, s, a, m in rows]
    path.write_text("\n".join(lines) + "\n")


def own_rates(cls: type, lr_actor: float, lr_critic: float) -> type:
    """SB3's TD3 or DDPG class with the actor's and the critic's own learning rates (SB3 gives both one rate:
    TD3.train sets it on [actor.optimizer, critic.optimizer] before each round of updates; this sets each its own)."""
    class OwnRates(cls):
        def _update_learning_rate(self, optimizers) -> None:
            for optimizer, rate in zip(optimizers, (lr_actor, lr_critic)):
                for group in optimizer.param_groups:
                    group["lr"] = rate
    return OwnRates


def run_sb3(algo: str, seed: int, threads: int, csv_file: Path, max_steps: int | None,
            learning_starts: int | None) -> int:
    """Train SB3's `algo` with the zoo's settings on our env until a 100-episode mean of 200, SIGTERM or max_steps."""
    import numpy as np
    import torch
    with contextlib.redirect_stderr(io.StringIO()):  # gym 0.26.2, where it runs, prints a notice on import
        import gymnasium
        from stable_baselines3 import DDPG, SAC, TD3
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.logger import Logger
        from stable_baselines3.common.monitor import Monitor
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        from rlharness.envs import make_env  # the same env (and particle fix) our scripts train on

    torch.set_num_threads(threads)

    class GymnasiumLander(gymnasium.Env):
        """Our env (rlharness.envs.make_env, the one our scripts train on) behind gymnasium's API, for SB3."""

        def __init__(self) -> None:
            self.env = make_env(ENV_ID, seed)
            space = self.env.observation_space
            self.observation_space = gymnasium.spaces.Box(space.low, space.high, space.shape, np.float32)
            self.action_space = gymnasium.spaces.Box(-1.0, 1.0, self.env.action_space.shape, np.float32)

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            super().reset(seed=seed)
            return self.env.reset(seed=seed)

        def step(self, action):
            return self.env.step(action)

        def close(self) -> None:
            self.env.close()

    class Solved(BaseCallback):
        """Records each episode (Monitor's info["episode"]); stops at a 100-episode mean of 200 or on request."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[tuple[int, int, float, float, float]] = []
            self.scores: list[float] = []
            self.stop = False
            self.start = time.perf_counter()

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.scores.append(float(info["episode"]["r"]))
                    avg = float(np.mean(self.scores[-100:]))
                    minutes = (time.perf_counter() - self.start) / 60
                    self.rows.append((len(self.scores), self.num_timesteps, self.scores[-1], avg, minutes))
                    print(f"episode {len(self.scores):4d} score {self.scores[-1]:8.1f} average score {avg:8.1f} "
                          f"steps {self.num_timesteps:7d} time {minutes:6.1f} min", flush=True)
                    if len(self.scores) >= 100 and avg >= SOLVED:
                        print(f"reached a 100-episode mean of {avg:.1f} >= {SOLVED:g}: stopping", flush=True)
                        return False
            return not self.stop and (max_steps is None or self.num_timesteps < max_steps)

    base = algo.removesuffix("-ours")
    zoo = sb3_settings(algo)
    if learning_starts is not None:
        zoo["learning_starts"] = learning_starts
    env = Monitor(GymnasiumLander())
    common = dict(policy_kwargs=dict(net_arch=zoo["net_arch"]), gamma=zoo["gamma"], buffer_size=zoo["buffer_size"],
                  learning_starts=zoo["learning_starts"], train_freq=zoo["train_freq"],
                  gradient_steps=zoo["gradient_steps"], seed=seed, device="cpu")
    if "batch_size" in zoo:
        common["batch_size"] = zoo["batch_size"]
    if "tau" in zoo:
        common["tau"] = zoo["tau"]
    rate = zoo["learning_rate"]
    if isinstance(rate, str):  # lin_<peak>: falling linearly from peak to 0 over n_timesteps
        peak = float(rate.removeprefix("lin_"))
        rate = lambda progress_remaining: progress_remaining * peak  # noqa: E731
    if base == "sac":
        model = SAC("MlpPolicy", env, learning_rate=rate, ent_coef=zoo["ent_coef"], **common)
    else:
        if "ou" in zoo:
            noise = OrnsteinUhlenbeckActionNoise(mean=np.zeros(2), sigma=zoo["ou"]["sigma"] * np.ones(2),
                                                 theta=zoo["ou"]["theta"], dt=zoo["ou"]["dt"])
        else:
            noise = NormalActionNoise(mean=np.zeros(2), sigma=zoo["noise_std"] * np.ones(2))
        cls = TD3 if base == "td3" else DDPG
        if "lr_actor" in zoo:
            cls = own_rates(cls, zoo["lr_actor"], zoo["learning_rate"])
        model = cls("MlpPolicy", env, learning_rate=rate, action_noise=noise, **common)
    model.set_logger(Logger(None, []))  # no console or file logging: the callback prints one line an episode
    callback = Solved()
    signal.signal(signal.SIGTERM, lambda *_: setattr(callback, "stop", True))  # the cap: stop after this step
    signal.signal(signal.SIGINT, lambda *_: setattr(callback, "stop", True))
    model.learn(total_timesteps=zoo["n_timesteps"], callback=callback)  # n_timesteps sets the lr schedule's length
    env.close()
    write_episodes(csv_file, callback.rows)
    print(f"{len(callback.rows)} episodes, {model.num_timesteps} env steps, "
          f"{(time.perf_counter() - callback.start) / 60:.1f} min; scores: {csv_file}", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------------
# The jobs: one process per (algo, seed), at most --parallel at a time, each stopped at the cap
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Job:
    algo: str
    seed: int
    runs_dir: Path
    process: subprocess.Popen | None = None
    started: float = 0.0
    terminated: bool = False
    scratch: tempfile.TemporaryDirectory | None = None
    log: io.TextIOWrapper | None = None
    episodes: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.algo}_seed{self.seed}"

    @property
    def csv_file(self) -> Path:
        return self.runs_dir / f"{self.name}.csv"

    def stopping(self) -> bool:
        """True once the run has solved and is saving: a signal then would cut short its scores CSV."""
        return "reached a 100-episode mean" in (self.runs_dir / f"{self.name}.log").read_text()


def command(job: Job, args: argparse.Namespace, scratch: Path) -> list[str]:
    """The job's command line: our training script, or this script's --run-sb3."""
    if job.algo in OURS:
        cmd = [sys.executable, "-u", str(OURS[job.algo]), "--seed", str(job.seed), "--stop-score", str(SOLVED),
               "--threads", str(args.threads), "--chkpt-dir", str(scratch / "chkpt"), "--plot-dir", str(scratch)]
        if args.max_steps is not None:
            cmd += ["--max-steps", str(args.max_steps)]
        if args.learning_starts is not None:
            cmd += ["--learning-starts", str(args.learning_starts)]
        return cmd + shlex.split(args.our_args)
    cmd = [sys.executable, "-u", str(Path(__file__).resolve()), "--run-sb3", job.algo.removeprefix("sb3-"),
           "--seeds", str(job.seed), "--threads", str(args.threads), "--episodes-csv", str(job.csv_file)]
    if args.max_steps is not None:
        cmd += ["--max-steps", str(args.max_steps)]
    if args.learning_starts is not None:
        cmd += ["--learning-starts", str(args.learning_starts)]
    return cmd


def start(job: Job, args: argparse.Namespace) -> None:
    job.scratch = tempfile.TemporaryDirectory(prefix=f"tts_{job.name}_")
    job.log = open(job.runs_dir / f"{job.name}.log", "w")
    job.process = subprocess.Popen(command(job, args, Path(job.scratch.name)), stdout=job.log,
                                   stderr=subprocess.STDOUT, cwd=ROOT)
    job.started = time.perf_counter()
    print(f"started {job.name}", flush=True)


def finish(job: Job) -> None:
    """Collect the run's episodes (ours: copy its scores CSV beside SB3's) and free its scratch folder."""
    job.log.close()
    if job.algo in OURS:
        for suffix in ("", "_q_bias", "_alpha"):  # the scores, and the critic and alpha records for compare.py
            ours_csv = Path(job.scratch.name) / f"{job.algo}_{ENV_ID}{suffix}.csv"
            if ours_csv.exists():
                shutil.copyfile(ours_csv, job.csv_file.with_name(f"{job.name}{suffix}.csv"))
    job.scratch.cleanup()
    job.episodes = read_episodes(job.csv_file) if job.csv_file.exists() else []
    print(f"finished {job.name} (exit {job.process.returncode}, {len(job.episodes)} episodes)", flush=True)


TAKEN = "not run here"  # how a taken run's .log starts (take_run), so that --report-only still says it was taken


def take_run(job: Job, source: Path, cap_minutes: float) -> None:
    """Our run of (algo, seed) from `source`: its episodes up to the cap, written to the job's CSV (with its critic
    and alpha records) as if this script had run it. `source` holds benchmarks/seeds.py's run folders
    (<algo>_seed<N>/<algo>_<env>.csv) or is an earlier time_to_solve_runs folder of this script (<algo>_seed<N>.csv:
    ours run once with the defaults serves both the same-settings and the own-settings comparison)."""
    folder = source / job.name
    nested, flat = folder / f"{job.algo}_{ENV_ID}.csv", source / f"{job.name}.csv"
    scores, writer = (nested, "benchmarks/seeds.py") if folder.is_dir() else (flat, "benchmarks/time_to_solve.py")
    earlier = source / f"{job.name}.log"
    if scores is flat and earlier.is_file() and (text := earlier.read_text()).startswith(TAKEN):
        writer += f" ({text.strip()})"  # itself taken: name where from
    if not scores.is_file():
        raise SystemExit(f"time_to_solve.py: error: --ours-from: no scores CSV for {job.name}: neither {nested} nor "
                         f"{flat}")
    lines = scores.read_text().strip().splitlines()
    minutes = lines[0].split(",").index("minutes")
    kept = [line for line in lines[1:] if float(line.split(",")[minutes]) <= cap_minutes]
    job.csv_file.write_text("\n".join([lines[0], *kept]) + "\n")
    for suffix in ("_q_bias", "_alpha"):  # the records beside the scores CSV, named after it in both layouts
        if (record := scores.with_name(f"{scores.stem}{suffix}.csv")).is_file():
            shutil.copyfile(record, job.csv_file.with_name(f"{job.name}{suffix}.csv"))
    (job.runs_dir / f"{job.name}.log").write_text(
        f"{TAKEN}: {len(kept)} of the {len(lines) - 1} episodes of {scores} (those within the "
        f"{cap_minutes:g}-minute cap), written by {writer}\n")
    job.episodes = read_episodes(job.csv_file)
    print(f"took {job.name} from {scores} ({len(kept)} episodes within the cap)", flush=True)


def run_jobs(jobs: list[Job], args: argparse.Namespace) -> None:
    """Run the jobs, at most args.parallel at a time; SIGTERM each at the cap, kill it if it has not ended 60 s on."""
    waiting, running = list(jobs), []
    cap_s = args.cap_minutes * 60
    try:
        while waiting or running:
            while waiting and len(running) < args.parallel:
                job = waiting.pop(0)
                start(job, args)
                running.append(job)
            time.sleep(0.2)
            for job in list(running):
                elapsed = time.perf_counter() - job.started
                if job.process.poll() is not None:
                    finish(job)
                    running.remove(job)
                elif elapsed > cap_s and not job.terminated and not job.stopping():
                    job.process.send_signal(signal.SIGTERM)  # it saves and writes its scores, then exits
                    job.terminated = True
                elif elapsed > cap_s + 60:
                    job.process.kill()
    except KeyboardInterrupt:
        for job in running:
            job.process.terminate()
            job.process.wait()
        raise


# ---------------------------------------------------------------------------------------------------------
# Results: CSV, Markdown, figure
# ---------------------------------------------------------------------------------------------------------
def read_episodes(path: Path) -> list[dict]:
    lines = path.read_text().strip().splitlines()
    keys = lines[0].split(",")
    return [{k: float(v) if v else math.nan for k, v in zip(keys, line.split(","))} for line in lines[1:]]


def solved_at(episodes: list[dict]) -> dict | None:
    """The first episode (of at least 100) whose 100-episode mean is >= 200; None if there is none."""
    return next((e for e in episodes if e["episode"] >= 100 and e["avg100"] >= SOLVED), None)


def summarise(job: Job, cap_minutes: float) -> dict:
    """The run's row: solved at the first episode (of at least 100) whose 100-episode mean is >= 200."""
    eps = job.episodes
    hit = solved_at(eps)
    last = eps[-1] if eps else None
    return dict(algo=job.algo, seed=job.seed, solved=hit is not None,
                minutes=hit["minutes"] if hit else cap_minutes,
                env_steps=int(hit["env_steps"] if hit else last["env_steps"] if last else 0),
                episodes=int(hit["episode"] if hit else len(eps)),
                final_avg100=last["avg100"] if last else math.nan,
                steps_per_s=last["env_steps"] / (last["minutes"] * 60) if last and last["minutes"] > 0 else math.nan,
                cap_minutes=cap_minutes)


def median(rows: list[dict], key: str) -> tuple[float, bool]:
    """Median of `key` over the runs, unsolved runs counted at their value; True if an unsolved run is in it."""
    ordered = sorted(rows, key=lambda r: (not r["solved"], r[key]))  # an unsolved run ranks above every solved one
    middle = ordered[(len(ordered) - 1) // 2: len(ordered) // 2 + 1]
    return statistics.mean(r[key] for r in middle), any(not r["solved"] for r in middle)


def rounded_bound(ratio: float, bound: str) -> float:
    """The ratio to one decimal, rounded so a bound stays true: a lower bound (">") down, an upper one ("<") up."""
    if bound == ">":
        return math.floor(ratio * 10 + 1e-9) / 10
    if bound == "<":
        return math.ceil(ratio * 10 - 1e-9) / 10
    return round(ratio, 1)


def env_description() -> str:
    """Which library ran ENV_ID, under which id: gymnasium's -v3, or gym 0.26.2's -v2 with the particle fix."""
    from rlharness import envs
    fix = ", exhaust particles freed" if envs.LIBRARY == "gym" else ""
    return f"{envs.LIBRARY} {envs.gym.__version__}'s {envs.runs_as(ENV_ID)}{fix}"


def markdown(rows: list[dict], skipped: list[str], args: argparse.Namespace, versions: str,
             commands: list[str] = ()) -> str:
    lines = [f"Time to a 100-episode mean of {SOLVED:g} on {ENV_ID} ({env_description()}: "
             "rlharness.envs.make_env, the same env for SB3 through a gymnasium adapter).",
             f"{datetime.date.today()}, {platform.machine()} with {os.cpu_count()} CPU cores, "
             f"{args.threads} torch thread(s) a run, {args.parallel} run(s) at a time, cap {args.cap_minutes:.3g} "
             f"minutes a run; {versions}. \">\": not solved within the cap (counted at the cap).", "",
             "| algo | seed | solved | minutes | env steps | episodes | final 100-episode mean | env steps/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "" if r["solved"] else ">"
        lines.append(f"| {r['algo']} | {r['seed']} | {'yes' if r['solved'] else 'no'} | {mark}{r['minutes']:.1f} | "
                     f"{mark}{r['env_steps']:,} | {r['episodes']} | {r['final_avg100']:.1f} | {r['steps_per_s']:.0f} |")
    by_algo = {a: [r for r in rows if r["algo"] == a] for a in dict.fromkeys(r["algo"] for r in rows)}
    medians = {a: median(rs, "minutes") for a, rs in by_algo.items()}
    lines += ["", "| algo | solved | median minutes | median env steps |", "|---|---|---|---|"]
    for a, rs in by_algo.items():
        minutes, capped = medians[a]
        steps, steps_capped = median(rs, "env_steps")
        lines.append(f"| {a} | {sum(r['solved'] for r in rs)}/{len(rs)} | {'>' if capped else ''}{minutes:.1f} | "
                     f"{'>' if steps_capped else ''}{steps:,.0f} |")
    for heading, pairs in PAIRS.items():
        ratios = [(sb3, ours) for sb3, ours in pairs if sb3 in medians and ours in medians]
        if not ratios:
            continue
        lines += ["", f"| {heading}: SB3's median minutes / ours | ratio |", "|---|---|"]
        for sb3, ours in ratios:
            (m_sb3, c_sb3), (m_ours, c_ours) = medians[sb3], medians[ours]
            if c_sb3 and c_ours:
                lines.append(f"| {sb3} / {ours} | unknown: neither median run solved |")
            else:  # an unsolved median counts at the cap: a lower bound for SB3, an upper one for ours
                bound = ">" if c_sb3 else "<" if c_ours else ""
                lines.append(f"| {sb3} / {ours} | {bound}{rounded_bound(m_sb3 / m_ours, bound):.1f}x |")
    taken = [f"{r['algo']}_seed{r['seed']}" for r in rows if r.get("taken")]
    if taken:
        lines += ["", f"Not run by this script: {', '.join(taken)}, each read from an earlier run of that seed with "
                      "the defaults (benchmarks/seeds.py's full-budget run, or an earlier time_to_solve.py run; one "
                      "thread, two runs at a time) up to the cap (--ours-from; each run's .log names its source)."]
    if skipped:
        lines += ["", f"Skipped: {', '.join(skipped)} (stable-baselines3 is not installed)."]
    if commands:
        lines += ["", "Commands (the runs folder's commands.txt: each invocation that ran or took runs into it, "
                      "with its date; then the one that wrote this file):", "",
                  *(f"- `{c}`" for c in commands)]
    return "\n".join(lines) + "\n"


def plot(jobs: list[Job], figure_file: Path, cap_minutes: float) -> None:
    """The 100-episode mean against minutes: one colour per algo, one line per seed, the solved line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    labelled = set()
    for job in jobs:
        if not job.episodes:
            continue
        ax.plot([e["minutes"] for e in job.episodes], [e["avg100"] for e in job.episodes], lw=1.5,
                color=COLOURS[job.algo], ls="--" if job.algo in SB3 else "-",
                label=None if job.algo in labelled else job.algo)
        labelled.add(job.algo)
    ax.axhline(SOLVED, color="black", ls=":", lw=1, label=f"solved ({SOLVED:g})")
    ax.set_xlim(0, cap_minutes)
    ax.set_xlabel("minutes of training")
    ax.set_ylabel("mean of the last 100 episodes")
    ax.set_title(f"{ENV_ID}: one line per seed")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(figure_file, dpi=100)
    plt.close(fig)


def versions() -> str:
    """torch and, where installed, SB3 and gymnasium versions, read without importing SB3."""
    from importlib.metadata import PackageNotFoundError, version
    found = []
    for name in ("torch", "stable-baselines3", "gymnasium"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{name} {version(name)}")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["ddpg", "sac", "sb3-sac", "sb3-td3"],
                        choices=[*OURS, *SB3], help="which agents (default: ddpg sac sb3-sac sb3-td3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cap-minutes", type=float, default=30.0, help="stop a run that has not solved by then")
    parser.add_argument("--threads", type=int, default=1, help="torch threads a run, the same for ours and SB3")
    parser.add_argument("--parallel", type=int, default=1,
                        help="runs at a time (default 1; our README's figures ran 2 at a time on 2 cores)")
    parser.add_argument("--max-steps", type=int, help="env-step budget a run (default: each agent's own)")
    parser.add_argument("--learning-starts", type=int, help="random steps before the first update (default: each's)")
    parser.add_argument("--our-args", default="", help='extra flags for our scripts, e.g. "--fc1-dims 32"')
    parser.add_argument("--ours-from", metavar="DIR",
                        help="do not run ours: read each from benchmarks/seeds.py's run folders in DIR "
                             "(DIR/<algo>_seed<N>/) or from an earlier time_to_solve_runs folder "
                             "(DIR/<algo>_seed<N>.csv), up to the cap")
    parser.add_argument("--quick", action="store_true",
                        help="seed 0, 3,000 env steps (1,000 random) or 20 s a run; writes time_to_solve_quick.*")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the results")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rebuild the CSV, table and figure from the runs already in --out "
                             "(e.g. after rerunning one seed into another --out and copying its files over)")
    sb3_runs = sorted([*ZOO, *(f"{a}-ours" for a in ZOO)])
    parser.add_argument("--run-sb3", choices=sb3_runs, help=argparse.SUPPRESS)  # one SB3 run (a job's process)
    parser.add_argument("--episodes-csv", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_sb3:
        return run_sb3(args.run_sb3, args.seeds[0], args.threads, Path(args.episodes_csv), args.max_steps,
                       args.learning_starts)
    if args.quick:
        args.cap_minutes, args.seeds = QUICK["cap_minutes"], QUICK["seeds"]
        args.max_steps = args.max_steps or QUICK["max_steps"]
        args.learning_starts = args.learning_starts or QUICK["learning_starts"]
    name = "time_to_solve_quick" if args.quick else "time_to_solve"

    algos, skipped = args.algos, []
    if not sb3_installed() and not args.report_only:
        skipped = [a for a in algos if a in SB3]
        algos = [a for a in algos if a not in SB3]
        if skipped:
            print(f"stable-baselines3 is not installed: skipping {', '.join(skipped)}", flush=True)
    out = Path(args.out)
    runs_dir = out / f"{name}_runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    jobs = [Job(algo, seed, runs_dir) for seed in args.seeds for algo in algos]
    recorded, command = runs_dir / "commands.txt", f"{datetime.date.today()} {invocation('time_to_solve.py', argv)}"
    if args.report_only:
        jobs = [job for job in jobs if job.csv_file.is_file()]
        for job in jobs:
            job.episodes = read_episodes(job.csv_file)
    else:
        with open(recorded, "a") as f:
            f.write(command + "\n")
        taken = [job for job in jobs if args.ours_from and job.algo in OURS]
        for job in taken:
            take_run(job, Path(args.ours_from), args.cap_minutes)
        run_jobs([job for job in jobs if job not in taken], args)

    rows = [summarise(job, args.cap_minutes) for job in jobs]
    for job, row in zip(jobs, rows):
        log = job.runs_dir / f"{job.name}.log"
        row["taken"] = log.is_file() and log.read_text().startswith(TAKEN)
    keys = ["algo", "seed", "solved", "minutes", "env_steps", "episodes", "final_avg100", "steps_per_s", "cap_minutes"]
    (out / f"{name}.csv").write_text("\n".join([",".join(keys)] + [
        ",".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys) for r in rows]) + "\n")
    commands = recorded.read_text().splitlines() if recorded.is_file() else []
    text = markdown(rows, skipped, args, versions(), commands + [command] if args.report_only else commands)
    (out / f"{name}.md").write_text(text)
    plot(jobs, out / f"{name}.png", args.cap_minutes)
    print(text, end="")
    print(f"results: {out / name}.csv, .md, .png; runs: {runs_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

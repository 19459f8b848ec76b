"""Plumbing shared by the DDPG and SAC scripts: environment, seeding, config flags, checkpoints, plots.

None of this is in the lecture's algorithm boxes; it is what the lecture's `utils.py` (plot_learning_curve)
grows into once the scripts must run anywhere and fail politely. `DDPG/utils.py` and `SAC/utils.py` are
identical copies (a test enforces it), so each folder runs on its own with flat imports.
"""
import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

with contextlib.redirect_stderr(io.StringIO()):
    import gym  # gym 0.26.2 prints an "unmaintained" notice on import; our users cannot act on it

ROOT = Path(__file__).resolve().parent.parent  # the repository: tmp/ and plots/ live here
TMP_DIR = ROOT / "tmp"
PLOT_DIR = ROOT / "plots"
SOLVED_SCORE = 200.0  # LunarLanderContinuous counts as solved at a 100-episode mean of 200


class UsageError(Exception):
    """Bad input from the user: main_*.py prints the message as one line and exits with code 2."""


class TrainingDiverged(Exception):
    """A loss became NaN or inf: main_*.py prints the message as one line and exits with code 1."""


# ---------------------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------------------
class NoParticles(gym.Wrapper):
    """Frees LunarLander's exhaust particles after every step when nothing is rendered.

    gym 0.26.2 only frees them while rendering, so a long hovering episode piles up Box2D bodies and the env
    slows down about 8x. Particles are decoration: they collide with the ground only, never the lander, so
    destroying them leaves the lander's trajectory bit-identical (tests/test_env.py checks it).
    """

    def step(self, action):
        result = self.env.step(action)
        self.env.unwrapped._clean_particles(True)
        return result


def make_env(env_id: str, seed: int | None = None, render_mode: str | None = None) -> gym.Env:
    """gym.make with a one-line error for unknown ids and discrete action spaces; seeds the action space."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            env = gym.make(env_id, render_mode=render_mode, disable_env_checker=True)
    except gym.error.Error as e:
        raise UsageError(f"unknown environment id {env_id!r} ({e})") from None
    except Exception as e:  # a registered env whose dependency is missing (e.g. mujoco, Box2D)
        raise UsageError(f"cannot create environment {env_id!r}: {type(e).__name__}: {e}") from None
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise UsageError(f"{env_id} has a {type(env.action_space).__name__} action space; "
                         "DDPG and SAC need continuous (Box) actions")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        raise UsageError(f"{env_id} needs a flat Box observation space, got {env.observation_space}")
    if render_mode is None and hasattr(env.unwrapped, "_clean_particles"):
        env = NoParticles(env)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (the env is seeded at its first reset)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def select_device(name: str) -> torch.device:
    """'auto' picks cuda when present, else cpu; asking for cuda without it is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available (use cpu or auto)")
    return torch.device(name)


# ---------------------------------------------------------------------------------------------------------
# Config: argparse flags generated from a typed dataclass, checked with one line per problem
# ---------------------------------------------------------------------------------------------------------
def flag(default: Any, help: str, check: Callable[[Any], bool] | None = None, rule: str = "",
         choices: tuple | None = None) -> Any:
    """A config field with its --help text and an optional validity check (e.g. lambda x: x > 0)."""
    return dataclasses.field(default=default, metadata=dict(help=help, check=check, rule=rule, choices=choices))


def positive(x: float) -> bool:
    """A finite number > 0."""
    return 0 < x < math.inf


def non_negative(x: float) -> bool:
    """A finite number >= 0."""
    return 0 <= x < math.inf


def unit_interval(x: float) -> bool:
    """(0, 1], the range of tau and gamma."""
    return 0 < x <= 1


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print the whole usage block first
        raise UsageError(message)


def parse_config(config_cls: type, argv: list[str] | None, description: str) -> Any:
    """Build the flags from `config_cls`'s fields (--batch-size for batch_size) and check each value."""
    parser = _OneLineParser(description=description,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(config_cls):
        name = "--" + f.name.replace("_", "-")
        meta = f.metadata
        if f.type is bool:
            parser.add_argument(name, action=argparse.BooleanOptionalAction, default=f.default, help=meta["help"])
        else:
            parser.add_argument(name, type=f.type, default=f.default, help=meta["help"], choices=meta.get("choices"))
    cfg = config_cls(**vars(parser.parse_args(argv)))
    for f in dataclasses.fields(config_cls):
        value, check = getattr(cfg, f.name), f.metadata.get("check")
        if check is not None and not check(value):
            raise UsageError(f"--{f.name.replace('_', '-')} must be {f.metadata['rule']}, got {value}")
    return cfg


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a script's main(); a UsageError is one line on stderr and exit 2, divergence exit 1, Ctrl-C 130."""
    try:
        code = main(argv)
    except UsageError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        code = 2
    except TrainingDiverged as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:  # a second Ctrl-C while saving: the files already written are complete
        print(f"{Path(sys.argv[0]).name}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


class StopRequest:
    """Turns Ctrl-C (SIGINT) and SIGTERM into a request that the training loop honours after the current step.

    The loop then saves, plots and exits cleanly. A second signal stops at once (KeyboardInterrupt). SIGINT is
    handled even where a shell started the run in the background with SIGINT ignored.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict = {}

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopRequest":
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


# ---------------------------------------------------------------------------------------------------------
# Checkpoints: written atomically, read as data only
# ---------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; on success rename it into place, else delete it.

    A crash mid-write never leaves a half-written file at `path`. The temporary name keeps the suffix, so
    writers that pick the format from it (savefig, Pillow) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through atomic_path."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Any:
    """torch.load with weights_only=True (a checkpoint is data, never code); problems become UsageErrors."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no saved agent at {path} (train one first)")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"cannot read checkpoint {path}: {first_line}") from None


def save_state_dicts(parts: dict, chkpt_dir: Path) -> None:
    """Write each part's state_dict to chkpt_dir/<name>.pt (the lecture's one file per network), atomically."""
    for name, part in parts.items():
        save_atomic(part.state_dict(), Path(chkpt_dir) / f"{name}.pt")


def load_state_dicts(parts: dict, chkpt_dir: Path, device: torch.device | str = "cpu") -> None:
    """Load what save_state_dicts wrote; a missing, corrupt or mismatched file is a UsageError."""
    for name, part in parts.items():
        path = Path(chkpt_dir) / f"{name}.pt"
        state = load_checkpoint(path, device)
        try:
            part.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"checkpoint {path} does not fit this agent: {detail}") from None


# ---------------------------------------------------------------------------------------------------------
# Saved agents: network files plus agent.json, which says what they fit
# ---------------------------------------------------------------------------------------------------------
def agent_sizes(env_id: str, env: gym.Env, **network: Any) -> dict:
    """What a checkpoint must match: env id, observation and action sizes, and the network's shape."""
    return dict(env=env_id, input_dims=int(env.observation_space.shape[0]),
                n_actions=int(env.action_space.shape[0]), **network)


def save_agent(agent: Any, sizes: dict, chkpt_dir: Path) -> None:
    """agent.save_models(chkpt_dir), then agent.json with `sizes` (atomically, like every file)."""
    agent.save_models(chkpt_dir)
    with atomic_path(Path(chkpt_dir) / "agent.json") as tmp:
        tmp.write_text(json.dumps(sizes, indent=1))


def load_agent(chkpt_dir: Path, env_id: str, env: gym.Env, build: Callable[[dict], Any]) -> Any:
    """Read agent.json, check it fits `env`, build the agent with `build(sizes)` and load its networks."""
    meta_file = Path(chkpt_dir) / "agent.json"
    if not meta_file.is_file():
        raise UsageError(f"no saved agent in {chkpt_dir} (train one first)")
    try:
        sizes = json.loads(meta_file.read_text())
        saved = (sizes["env"], sizes["input_dims"], sizes["n_actions"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"corrupt checkpoint description {meta_file}") from None
    if saved[0] != env_id:
        raise UsageError(f"the saved agent in {chkpt_dir} was trained on {saved[0]}, not {env_id}")
    here = agent_sizes(env_id, env)
    if saved[1:] != (here["input_dims"], here["n_actions"]):
        raise UsageError(f"the saved agent has observation/action sizes {saved[1:]}, {env_id} has "
                         f"{(here['input_dims'], here['n_actions'])}")
    agent = build(sizes)
    agent.load_models(chkpt_dir)
    return agent


def keep_previous_run(chkpt_dir: Path) -> Path | None:
    """Move an earlier run's best/ and latest/ into chkpt_dir/previous/ (replacing an older previous/).

    A fresh run starts over without deleting what the last one saved. Returns previous/ if anything moved.
    """
    chkpt_dir = Path(chkpt_dir)
    earlier = [chkpt_dir / name for name in ("best", "latest") if (chkpt_dir / name).exists()]
    if not earlier:
        return None
    previous = chkpt_dir / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for folder in earlier:
        os.replace(folder, previous / folder.name)
    return previous


def check_writable(*folders: Path) -> None:
    """Fail before training, not after it, when a results folder cannot be written."""
    for folder in folders:
        try:
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write_test_{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UsageError(f"cannot write to {folder}: {e.strerror}") from None


# ---------------------------------------------------------------------------------------------------------
# Evaluation, plots and the per-episode line
# ---------------------------------------------------------------------------------------------------------
def evaluate_agent(agent: Any, env: gym.Env, n_episodes: int, seed: int,
                   frames: list[np.ndarray] | None = None) -> list[float]:
    """Run n deterministic episodes (agent.choose_action(obs, evaluate=True)) and return their scores.

    If `frames` is a list, the first episode's rendered frames are appended to it (env in rgb_array mode).
    """
    scores = []
    for i in range(n_episodes):
        observation, _ = env.reset(seed=seed + i)
        record = frames is not None and i == 0
        if record:
            frames.append(env.render())
        done, score = False, 0.0
        while not done:
            action = agent.choose_action(observation, evaluate=True)
            observation, reward, terminated, truncated, _ = env.step(action)
            score += reward
            done = terminated or truncated
            if record:
                frames.append(env.render())
        scores.append(score)
    return scores


def save_gif(frames: list[np.ndarray], gif_file: Path, fps: float, max_frames: int = 150, width: int = 400) -> Path:
    """Write frames as an animated GIF (atomically), keeping at most max_frames evenly spaced, `width` pixels wide.

    The last frame is always kept and shown longer, so the landing (or crash) stays visible.
    """
    from PIL import Image

    step = max(1, math.ceil(len(frames) / max_frames))
    picked = frames[::step] if (len(frames) - 1) % step == 0 else frames[::step] + [frames[-1]]
    height = round(frames[0].shape[0] * width / frames[0].shape[1])
    images = [Image.fromarray(f).resize((width, height), Image.BILINEAR) for f in picked]
    durations = [round(1000 * step / fps)] * (len(images) - 1) + [1500]
    with atomic_path(gif_file) as tmp:
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=True)
    return Path(gif_file)


def evaluate_saved(cfg: Any, build: Callable[[gym.Env, dict], Any], gif_file: Path | None = None) -> list[str]:
    """--evaluate N: load <chkpt_dir>/best/ (built by build(env, sizes)), run N deterministic episodes.

    cfg.render shows them in a window; gif_file records the first one. Returns the lines to print: each
    episode's score, then the mean and standard deviation.
    """
    if cfg.render and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UsageError("--render needs a display and none was found (DISPLAY is not set); "
                         "--gif records an episode instead")
    render_mode = "human" if cfg.render else "rgb_array" if gif_file else None
    env = make_env(cfg.env, cfg.seed, render_mode=render_mode)
    agent = load_agent(Path(cfg.chkpt_dir) / "best", cfg.env, env, lambda sizes: build(env, sizes))
    frames = [] if gif_file and not cfg.render else None
    scores = evaluate_agent(agent, env, cfg.evaluate, cfg.seed, frames)
    env.close()
    lines = [f"evaluation episode {i + 1:3d} score {score:8.1f}" for i, score in enumerate(scores)]
    lines.append(f"mean score {np.mean(scores):.1f} +- {np.std(scores):.1f} over {len(scores)} episodes")
    if frames:
        fps = env.metadata.get("render_fps", 30)
        lines.append(f"first episode ({len(frames)} frames) recorded in {save_gif(frames, gif_file, fps)}")
    return lines


def running_mean(scores: list[float], window: int = 100) -> np.ndarray:
    """Mean of the last `window` scores at every episode (fewer at the start)."""
    x = np.asarray(scores, dtype=np.float64)
    c = np.cumsum(np.insert(x, 0, 0.0))
    n = np.minimum(np.arange(1, len(x) + 1), window)
    return (c[1:] - c[np.arange(1, len(x) + 1) - n]) / n


def plot_learning_curve(scores: list[float], steps: list[int], figure_file: Path, title: str,
                        solved_score: float | None = SOLVED_SCORE, minutes: list[float] | None = None) -> Path:
    """Draw raw scores, the 100-episode running mean and the solved line; write the scores as CSV beside it.

    The CSV has one row per episode: episode, env_steps (at its end), score, avg100 and minutes (wall-clock
    training time at its end; empty when not given). solved_score=None leaves out the solved line (it is
    LunarLander's 200).

    Returns the CSV's path. Both files are written atomically.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure_file = Path(figure_file)
    avg = running_mean(scores)
    episodes = np.arange(1, len(scores) + 1)
    csv_file = figure_file.with_suffix(".csv")
    minutes = [f"{m:.4f}" for m in minutes] if minutes is not None else [""] * len(scores)
    lines = ["episode,env_steps,score,avg100,minutes"]
    lines += [f"{e},{t},{s:.4f},{a:.4f},{m}" for e, t, s, a, m in zip(episodes, steps, scores, avg, minutes)]
    with atomic_path(csv_file) as tmp:
        tmp.write_text("\n".join(lines) + "\n")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(episodes, scores, color="tab:blue", alpha=0.35, lw=0.8, label="episode score")
    ax.plot(episodes, avg, color="tab:blue", lw=2, label="mean of last 100 episodes")
    if solved_score is not None:
        ax.axhline(solved_score, color="tab:green", ls="--", lw=1, label=f"solved ({solved_score:g})")
    ax.set_xlabel("episode")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(figure_file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return csv_file


def episode_line(episode: int, score: float, avg: float, total_steps: int, steps_per_s: float,
                 elapsed_s: float) -> str:
    """The lecture's per-episode line plus steps, speed and time."""
    return (f"episode {episode:4d} score {score:8.1f} average score {avg:8.1f} "
            f"steps {total_steps:7d} steps/s {steps_per_s:6.0f} time {elapsed_s / 60:6.1f} min")


class Progress:
    """The training loop's bookkeeping: score history, 100-episode mean, best-agent checkpoints, the line."""

    def __init__(self, agent: Any, sizes: dict, chkpt_dir: Path, save_every: int = 10) -> None:
        self.agent, self.sizes, self.chkpt_dir, self.save_every = agent, sizes, Path(chkpt_dir), save_every
        self.scores: list[float] = []
        self.steps: list[int] = []
        self.minutes: list[float] = []  # wall-clock training time at the end of each episode
        self.best_score = -math.inf
        self.start = self.episode_start = time.perf_counter()
        self.episode_start_steps = 0

    @property
    def avg_score(self) -> float:
        """Mean of the last 100 episode scores (the lecture's "100 game average")."""
        return float(np.mean(self.scores[-100:])) if self.scores else -math.inf

    def end_episode(self, score: float, total_steps: int, losses: tuple[torch.Tensor, ...] | None) -> str:
        """Record a finished episode and return its line.

        `losses` are the episode's last learn() losses: if one is NaN or inf the run stops (TrainingDiverged)
        before anything is saved, so the last good checkpoints stay. Otherwise saves the agent to best/ when the
        100-episode mean improved, and to latest/ every save_every episodes (so a crash loses at most those).
        """
        if losses is not None and not torch.isfinite(torch.stack(losses)).all():  # one check per episode
            raise TrainingDiverged(f"a loss became NaN or inf in episode {len(self.scores) + 1} (env step "
                                   f"{total_steps}); the last good checkpoints in {self.chkpt_dir} are kept")
        self.scores.append(score)
        self.steps.append(total_steps)
        self.minutes.append((time.perf_counter() - self.start) / 60)
        avg_score = self.avg_score
        if avg_score > self.best_score:
            self.best_score = avg_score
            save_agent(self.agent, self.sizes, self.chkpt_dir / "best")
        if len(self.scores) % self.save_every == 0:
            save_agent(self.agent, self.sizes, self.chkpt_dir / "latest")
        now = time.perf_counter()
        speed = (total_steps - self.episode_start_steps) / max(now - self.episode_start, 1e-9)
        self.episode_start, self.episode_start_steps = now, total_steps
        return episode_line(len(self.scores), score, avg_score, total_steps, speed, now - self.start)

    def reached(self, stop_score: float) -> bool:
        """True once 100 episodes are done and their mean is at least stop_score."""
        return len(self.scores) >= 100 and self.avg_score >= stop_score

    def finish(self, total_steps: int, figure_file: Path, title: str) -> list[str]:
        """Save the final agent to latest/, write the curve and CSV; return the closing lines."""
        save_agent(self.agent, self.sizes, self.chkpt_dir / "latest")
        lines = []
        if self.scores:
            solved = SOLVED_SCORE if self.sizes["env"].startswith("LunarLander") else None
            csv_file = plot_learning_curve(self.scores, self.steps, figure_file, title, solved, self.minutes)
            lines.append(f"scores: {csv_file}  curve: {figure_file}")
        lines.append(f"checkpoints: {self.chkpt_dir / 'best'} (best 100-episode mean {self.best_score:.1f}) "
                     f"and {self.chkpt_dir / 'latest'}")
        minutes = (time.perf_counter() - self.start) / 60
        lines.append(f"{len(self.scores)} episodes, {total_steps} env steps, {minutes:.1f} min")
        return lines

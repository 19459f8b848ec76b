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
import pickle
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
    spec = gym.envs.registry.get(env_id)
    if spec is not None and str(spec.entry_point).startswith("gym.envs.mujoco"):
        if render_mode == "rgb_array" and not os.environ.get("DISPLAY"):
            os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo renders off-screen through EGL without a display
        _quiet_mujoco()
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


def _quiet_mujoco() -> None:
    """gym 0.26.2's MuJoCo models use an attribute MuJoCo 3 deprecates: drop that one warning (every make_env
    would print it, and write MUJOCO_LOG.TXT); other MuJoCo warnings still print."""
    try:
        import mujoco
    except ImportError:
        return  # gym.make then says that mujoco is missing
    mujoco.set_mju_user_warning(
        lambda message: None if "settotalmass" in message else print(f"MuJoCo: {message}", file=sys.stderr))


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


def parse_config(config_cls: type, argv: list[str] | None, description: str, defaults: dict | None = None) -> Any:
    """Build the flags from `config_cls`'s fields (--batch-size for batch_size) and check each value.

    `defaults` replaces the dataclass defaults for the flags it names (--resume uses the saved run's values).
    """
    parser = _OneLineParser(description=description,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(config_cls):
        name = "--" + f.name.replace("_", "-")
        meta = f.metadata
        if f.type is bool:
            parser.add_argument(name, action=argparse.BooleanOptionalAction, default=f.default, help=meta["help"])
        else:
            parser.add_argument(name, type=f.type, default=f.default, help=meta["help"], choices=meta.get("choices"))
    if defaults:
        parser.set_defaults(**{f.name: defaults[f.name] for f in dataclasses.fields(config_cls) if f.name in defaults})
    cfg = config_cls(**vars(parser.parse_args(argv)))
    for f in dataclasses.fields(config_cls):
        value, check = getattr(cfg, f.name), f.metadata.get("check")
        if check is not None and not check(value):
            raise UsageError(f"--{f.name.replace('_', '-')} must be {f.metadata['rule']}, got {value}")
    if getattr(cfg, "resume", False) and getattr(cfg, "evaluate", 0):
        raise UsageError("--resume continues training and --evaluate trains nothing: use one of them")
    return cfg


# Flags a resumed run may change: how long it runs and where it runs. Every other flag keeps the saved value.
RUN_FLAGS = ("episodes", "max_steps", "stop_score", "save_every", "save_buffer", "device", "threads", "plot_dir")
NOT_RESTORED = ("resume", "evaluate", "gif", "render", "chkpt_dir")


def resume_config(config_cls: type, argv: list[str] | None, description: str, chkpt_dir: Path) -> Any:
    """--resume: the saved run's flags, with the RUN_FLAGS given now; a changed algorithm flag is a UsageError."""
    saved = read_training_state(Path(chkpt_dir) / "latest")["config"]
    saved = {name: value for name, value in saved.items() if name not in NOT_RESTORED}
    cfg = parse_config(config_cls, argv, description, defaults=saved)
    for name, value in saved.items():
        if name not in RUN_FLAGS and hasattr(cfg, name) and getattr(cfg, name) != value:
            raise UsageError(f"--{name.replace('_', '-')} {getattr(cfg, name)} differs from the resumed run's "
                             f"{value}: a resumed run keeps its settings (start a fresh run to change them)")
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
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):  # a pickled object: refused before any of it could run
            raise UsageError(f"cannot read checkpoint {path}: it holds pickled Python objects, not tensors "
                             "(refused unread; a checkpoint must be data only)") from None
        raise UsageError(f"cannot read checkpoint {path}: corrupt file ({_first_line(e)})") from None
    except Exception as e:
        raise UsageError(f"cannot read checkpoint {path}: {_first_line(e)}") from None


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


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


def save_agent(agent: Any, sizes: dict, chkpt_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """Write a complete checkpoint folder: agent.save_models, agent.json (`sizes`) and `extra` {file name: object}.

    Everything goes into <chkpt_dir>.new/ first; then the old folder is renamed to <chkpt_dir>.old/, the new one
    into place, and the old one deleted. A crash at any instant leaves one complete checkpoint: either the old
    or the new folder (recover_checkpoint() finishes an interrupted swap).
    """
    chkpt_dir = Path(chkpt_dir)
    recover_checkpoint(chkpt_dir)
    new, old = chkpt_dir.with_name(chkpt_dir.name + ".new"), chkpt_dir.with_name(chkpt_dir.name + ".old")
    shutil.rmtree(new, ignore_errors=True)
    agent.save_models(new)
    for name, obj in (extra or {}).items():
        save_atomic(obj, new / name)
    with atomic_path(new / "agent.json") as tmp:
        tmp.write_text(json.dumps(sizes, indent=1))
    if chkpt_dir.exists():
        os.replace(chkpt_dir, old)
    os.replace(new, chkpt_dir)
    shutil.rmtree(old, ignore_errors=True)


def recover_checkpoint(chkpt_dir: Path) -> None:
    """Finish a save that a crash interrupted: put <chkpt_dir>.old/ back if the swap was cut short, and drop a
    half-written <chkpt_dir>.new/."""
    chkpt_dir = Path(chkpt_dir)
    new, old = chkpt_dir.with_name(chkpt_dir.name + ".new"), chkpt_dir.with_name(chkpt_dir.name + ".old")
    if old.exists():
        if chkpt_dir.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, chkpt_dir)
    shutil.rmtree(new, ignore_errors=True)


def load_agent(chkpt_dir: Path, env_id: str, env: gym.Env, build: Callable[[dict], Any]) -> Any:
    """Read agent.json, check it fits `env`, build the agent with `build(sizes)` and load its networks."""
    recover_checkpoint(chkpt_dir)
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
    for name in ("best", "latest"):
        recover_checkpoint(chkpt_dir / name)
    earlier = [chkpt_dir / name for name in ("best", "latest") if (chkpt_dir / name).exists()]
    if not earlier:
        return None
    previous = chkpt_dir / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for folder in earlier:
        os.replace(folder, previous / folder.name)
    return previous


# ---------------------------------------------------------------------------------------------------------
# Training state for --resume: counters, score history and every random generator the run draws from
# ---------------------------------------------------------------------------------------------------------
def rng_states(env: gym.Env, agent: Any) -> dict:
    """The state of every generator a training run draws from, as plain data (loads with weights_only)."""
    numpy_global = np.random.get_state()
    states = {"python": random.getstate(), "torch": torch.get_rng_state(),
              "numpy": (numpy_global[0], torch.from_numpy(numpy_global[1].astype(np.int64)), *numpy_global[2:]),
              "env": env.unwrapped.np_random.bit_generator.state,
              "action_space": env.action_space.np_random.bit_generator.state,
              "buffer": agent.memory.rng.bit_generator.state}
    if getattr(agent, "noise", None) is not None:
        states["noise"] = agent.noise.state_dict()
    if torch.cuda.is_available() and agent.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(agent.device)
    return states


def set_rng_states(states: dict, env: gym.Env, agent: Any) -> None:
    """Put back what rng_states() saved, so the resumed run draws the same numbers as an uninterrupted one."""
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    env.unwrapped.np_random.bit_generator.state = states["env"]
    env.action_space.np_random.bit_generator.state = states["action_space"]
    agent.memory.rng.bit_generator.state = states["buffer"]
    if "noise" in states and getattr(agent, "noise", None) is not None:
        agent.noise.load_state_dict(states["noise"])
    if "cuda" in states and agent.device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], agent.device)


def read_training_state(chkpt_dir: Path) -> dict:
    """Load chkpt_dir/training_state.pt (weights_only); a missing or corrupt one is a UsageError."""
    recover_checkpoint(chkpt_dir)
    path = Path(chkpt_dir) / "training_state.pt"
    if not path.is_file():
        raise UsageError(f"no run to resume in {chkpt_dir} (no training_state.pt; start one without --resume)")
    state = load_checkpoint(path)
    if not isinstance(state, dict) or not {"config", "total_steps", "scores", "rng"} <= state.keys():
        raise UsageError(f"cannot read checkpoint {path}: not a training state")
    return state


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


def _plot(panels: int = 1, height: float = 4.5):
    """A matplotlib (Agg) figure of `panels` stacked axes sharing x: (pyplot, figure, axes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(panels, 1, figsize=(8, height), sharex=True, squeeze=False)
    return plt, fig, axes[:, 0]


def _save(plt: Any, fig: Any, figure_file: Path) -> Path:
    """Lay out, write the figure atomically and close it."""
    fig.tight_layout()
    with atomic_path(figure_file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(figure_file)


def plot_learning_curve(scores: list[float], steps: list[int], figure_file: Path, title: str,
                        solved_score: float | None = SOLVED_SCORE, minutes: list[float] | None = None) -> Path:
    """Draw raw scores, the 100-episode running mean and the solved line; write the scores as CSV beside it.

    The CSV has one row per episode: episode, env_steps (at its end), score, avg100 and minutes (wall-clock
    training time at its end; empty when not given). solved_score=None leaves out the solved line (it is
    LunarLander's 200).

    Returns the CSV's path. Both files are written atomically.
    """
    figure_file = Path(figure_file)
    avg = running_mean(scores)
    episodes = np.arange(1, len(scores) + 1)
    csv_file = figure_file.with_suffix(".csv")
    minutes = [f"{m:.4f}" for m in minutes] if minutes is not None else [""] * len(scores)
    lines = ["episode,env_steps,score,avg100,minutes"]
    lines += [f"{e},{t},{s:.4f},{a:.4f},{m}" for e, t, s, a, m in zip(episodes, steps, scores, avg, minutes)]
    with atomic_path(csv_file) as tmp:
        tmp.write_text("\n".join(lines) + "\n")

    plt, fig, (ax,) = _plot()
    ax.plot(episodes, scores, color="tab:blue", alpha=0.35, lw=0.8, label="episode score")
    ax.plot(episodes, avg, color="tab:blue", lw=2, label="mean of last 100 episodes")
    if solved_score is not None:
        ax.axhline(solved_score, color="tab:green", ls="--", lw=1, label=f"solved ({solved_score:g})")
    ax.set_xlabel("episode")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(plt, fig, figure_file)
    return csv_file


def episode_line(episode: int, score: float, avg: float, total_steps: int, steps_per_s: float,
                 elapsed_s: float) -> str:
    """The lecture's per-episode line plus steps, speed and time."""
    return (f"episode {episode:4d} score {score:8.1f} average score {avg:8.1f} "
            f"steps {total_steps:7d} steps/s {steps_per_s:6.0f} time {elapsed_s / 60:6.1f} min")


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + gamma G_{t+1}, with G = 0 after the last reward: the return actually obtained from each step."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    g = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * g
        returns[t] = g
    return returns


def last_episode(memory: Any, episode_len: int) -> np.ndarray:
    """The buffer slots of the last `episode_len` transitions stored (at most the whole buffer), oldest first."""
    n = min(episode_len, len(memory))
    return (memory.mem_cntr - n + np.arange(n)) % memory.mem_size


def q_bias_row(agent: Any, episode_len: int, gamma: float) -> dict[str, float]:
    """The critic's estimate at the last episode's states beside the discounted return obtained from them.

    The episode is read back from the replay buffer (its last `episode_len` transitions). agent.critic_estimates
    gives the estimate per state (DDPG: Q(s, mu(s)); SAC: min_i Q_i(s, a~) and each Q_i). If a time limit cut
    the episode, its last 1/(1 - gamma) states are left out: their obtained return misses what came after.
    """
    memory = agent.memory
    index = last_episode(memory, episode_len)
    n = len(index)
    returns = discounted_returns(memory.reward_memory[index], gamma)
    if memory.terminal_memory[index[-1]] == 0:  # truncated, not terminated
        horizon = round(1 / (1 - gamma)) if gamma < 1 else n
        keep = max(1, n - horizon)
        index, returns = index[:keep], returns[:keep]
    states = torch.as_tensor(memory.state_memory[index], device=agent.device)
    with torch.no_grad():
        estimates = {name: float(q.mean()) for name, q in agent.critic_estimates(states).items()}
    return dict(real_return=float(returns.mean()), **estimates, states=len(index))


def write_csv(rows: list[dict], csv_file: Path) -> Path:
    """Rows of equal keys as a CSV with a header line, written atomically."""
    keys = list(rows[0])
    lines = [",".join(keys)] + [",".join(f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
                                for r in rows]
    with atomic_path(csv_file) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(csv_file)


def plot_q_bias(rows: list[dict], figure_file: Path, title: str) -> Path:
    """The critic's estimate against the return actually obtained, over training (and their difference)."""
    plt, fig, (top, bottom) = _plot(panels=2, height=6)
    steps = [r["env_steps"] for r in rows]
    top.plot(steps, [r["real_return"] for r in rows], "k.-", lw=1.5, label="discounted return obtained")
    for name in [k for k in rows[0] if k not in ("episode", "env_steps", "real_return", "states")]:
        label = {"Q": "Q(s, mu(s))", "min_Q": "min(Q1, Q2)(s, a~)"}.get(name, f"{name}(s, a~)")
        top.plot(steps, [r[name] for r in rows], ".-", label=label, alpha=0.9)
        bottom.plot(steps, [r[name] - r["real_return"] for r in rows], ".-", label=label, alpha=0.9)
    bottom.axhline(0, color="k", lw=0.8)
    top.set_ylabel("value (mean over the episode's states)")
    bottom.set_ylabel("estimate - obtained")
    bottom.set_xlabel("env steps")
    top.set_title(title)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    return _save(plt, fig, figure_file)


def plot_alpha(rows: list[dict], figure_file: Path, title: str) -> Path:
    """SAC's temperature alpha and the policy's entropy estimate over training, with the target entropy."""
    plt, fig, (top, bottom) = _plot(panels=2, height=6)
    steps = [r["env_steps"] for r in rows]
    top.plot(steps, [r["alpha"] for r in rows], ".-", color="tab:purple")
    top.set_yscale("log")
    top.set_ylabel("alpha")
    top.set_title(title)
    bottom.plot(steps, [r["entropy"] for r in rows], ".-", color="tab:orange", label="entropy -E[log pi(a~|s)]")
    bottom.axhline(rows[0]["target_entropy"], color="k", ls="--", lw=1, label="target entropy -|A|")
    bottom.set_ylabel("entropy (nats)")
    bottom.set_xlabel("env steps")
    bottom.legend(loc="best", fontsize=8)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return _save(plt, fig, figure_file)


class Progress:
    """The training loop's bookkeeping: scores, checkpoints, the per-episode line, and what --resume needs.

    Saves the agent to best/ whenever the 100-episode mean improves (what --evaluate loads) and to latest/ every
    --save-every episodes and at the end, with the training state (counters, score history, RNG states, the
    config, and with --save-buffer the replay buffer) so --resume continues the run. Also records, on the first
    episode and every Q_BIAS_EVERY episodes, the critic's estimate beside the obtained return (and SAC's alpha
    and entropy), drawn at the end as <algo>_<env>_q_bias.png (and sac_<env>_alpha.png).
    """
    Q_BIAS_EVERY = 5

    def __init__(self, agent: Any, env: gym.Env, sizes: dict, cfg: Any, algo: str) -> None:
        self.agent, self.env, self.sizes = agent, env, sizes
        self.config = dataclasses.asdict(cfg)
        self.chkpt_dir, self.save_every = Path(cfg.chkpt_dir), cfg.save_every
        self.save_buffer, self.gamma = cfg.save_buffer, cfg.gamma
        self.figure_file = Path(cfg.plot_dir) / f"{algo}_{cfg.env}.png"
        self.title = f"{algo.upper()} on {cfg.env}"
        self.scores: list[float] = []
        self.steps: list[int] = []
        self.minutes: list[float] = []  # wall-clock training time at the end of each episode
        self.q_bias: list[dict] = []
        self.alpha: list[dict] = []
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
        self.scores.append(float(score))  # a Python float: numpy scalars would not load with weights_only
        self.steps.append(int(total_steps))
        self.minutes.append((time.perf_counter() - self.start) / 60)
        episode = len(self.scores)
        if episode == 1 or episode % self.Q_BIAS_EVERY == 0:
            self._record_critic(episode, total_steps - self.episode_start_steps, total_steps)
        avg_score = self.avg_score
        if avg_score > self.best_score:
            self.best_score = avg_score
            save_agent(self.agent, self.sizes, self.chkpt_dir / "best")
        if episode % self.save_every == 0:
            self.save_latest(total_steps)
        now = time.perf_counter()
        speed = (total_steps - self.episode_start_steps) / max(now - self.episode_start, 1e-9)
        self.episode_start, self.episode_start_steps = now, total_steps
        return episode_line(episode, score, avg_score, total_steps, speed, now - self.start)

    def _record_critic(self, episode: int, episode_len: int, total_steps: int) -> None:
        """Append the critic record (and SAC's alpha and entropy) for the episode that just ended.

        SAC's estimates sample a~ ~ pi(.|s): fork_rng keeps those draws out of training's random stream, so a
        run learns the same with or without the record.
        """
        devices = [self.agent.device] if self.agent.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            row = q_bias_row(self.agent, episode_len, self.gamma)
            self.q_bias.append(dict(episode=episode, env_steps=total_steps, **row))
            if hasattr(self.agent, "log_alpha"):  # SAC: the temperature and the entropy it steers
                index = last_episode(self.agent.memory, episode_len)
                states = torch.as_tensor(self.agent.memory.state_memory[index], device=self.agent.device)
                self.alpha.append(dict(episode=episode, env_steps=total_steps, alpha=float(self.agent.alpha),
                                       entropy=float(self.agent.policy_entropy(states)),
                                       target_entropy=self.agent.target_entropy))

    def reached(self, stop_score: float) -> bool:
        """True once 100 episodes are done and their mean is at least stop_score."""
        return len(self.scores) >= 100 and self.avg_score >= stop_score

    # -----------------------------------------------------------------------------------------------------
    # latest/ and --resume
    # -----------------------------------------------------------------------------------------------------
    def save_latest(self, total_steps: int) -> None:
        """Save the agent and the training state (and the buffer with --save-buffer) to latest/, atomically."""
        state = dict(version=1, config=self.config, total_steps=total_steps, scores=self.scores, steps=self.steps,
                     minutes=self.minutes, best_score=self.best_score, q_bias=self.q_bias, alpha=self.alpha,
                     elapsed_minutes=(time.perf_counter() - self.start) / 60,
                     rng=rng_states(self.env, self.agent))
        extra = {"training_state.pt": state}
        if self.save_buffer:
            extra["buffer.pt"] = self.agent.memory.state_dict()
        save_agent(self.agent, self.sizes, self.chkpt_dir / "latest", extra)

    def resume(self) -> int:
        """--resume: load latest/ (networks, optimisers, counters, scores, RNG states, the buffer if saved).

        Returns the run's env-step count. Without a saved buffer the run refills an empty one.
        """
        latest = self.chkpt_dir / "latest"
        state = read_training_state(latest)
        load_agent(latest, self.sizes["env"], self.env, lambda sizes: self.agent)
        if (latest / "buffer.pt").is_file():
            try:
                self.agent.memory.load_state_dict(load_checkpoint(latest / "buffer.pt"))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise UsageError(f"checkpoint {latest / 'buffer.pt'} does not fit this buffer: {e}") from None
        self.scores, self.steps, self.minutes = list(state["scores"]), list(state["steps"]), list(state["minutes"])
        self.q_bias, self.alpha = list(state.get("q_bias", [])), list(state.get("alpha", []))
        self.best_score = state["best_score"]
        self.env.reset(seed=self.config["seed"])  # creates the env's generator; its saved state replaces it
        set_rng_states(state["rng"], self.env, self.agent)
        self.start = time.perf_counter() - 60 * state["elapsed_minutes"]
        self.episode_start_steps = state["total_steps"]
        return state["total_steps"]

    def finish(self, total_steps: int) -> list[str]:
        """Save the final state to latest/, write the curves and CSVs; return the closing lines."""
        self.save_latest(total_steps)
        lines = []
        if self.scores:
            solved = SOLVED_SCORE if self.sizes["env"].startswith("LunarLander") else None
            csv_file = plot_learning_curve(self.scores, self.steps, self.figure_file, self.title, solved,
                                           self.minutes)
            lines.append(f"scores: {csv_file}  curve: {self.figure_file}")
        if self.q_bias:
            q_bias_file = self.figure_file.with_name(f"{self.figure_file.stem}_q_bias.png")
            write_csv(self.q_bias, q_bias_file.with_suffix(".csv"))
            plot_q_bias(self.q_bias, q_bias_file, f"{self.title}: critic estimate vs return obtained")
            lines.append(f"critic estimate vs obtained return: {q_bias_file} (and .csv)")
        if self.alpha:
            alpha_file = self.figure_file.with_name(f"{self.figure_file.stem}_alpha.png")
            write_csv(self.alpha, alpha_file.with_suffix(".csv"))
            plot_alpha(self.alpha, alpha_file, f"{self.title}: temperature alpha and policy entropy")
            lines.append(f"alpha and entropy: {alpha_file} (and .csv)")
        lines.append(f"checkpoints: {self.chkpt_dir / 'best'} (best 100-episode mean {self.best_score:.1f}) "
                     f"and {self.chkpt_dir / 'latest'}")
        minutes = (time.perf_counter() - self.start) / 60
        lines.append(f"{len(self.scores)} episodes, {total_steps} env steps, {minutes:.1f} min")
        return lines

"""Deterministic episodes, played in one place: --evaluate, the evaluation during training that picks best/, and
the critic record's noise-free episodes all call play_episode. Also the GIF of an evaluated episode."""
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlharness.checkpoints import load_agent
from rlharness.envs import agent_sizes, env_note, make_env
from rlharness.errors import UsageError
from rlharness.files import atomic_path


@dataclass
class Episode:
    """One deterministic episode: the states it visited, the rewards it got, and whether it terminated (else a time
    limit truncated it)."""
    states: np.ndarray
    rewards: np.ndarray
    terminated: bool

    @property
    def score(self) -> float:
        return float(self.rewards.sum())


def play_episode(agent: Any, env: Any, seed: int, frames: list[np.ndarray] | None = None) -> Episode:
    """Play one episode with agent.choose_action(s, evaluate=True) (DDPG: mu(s), no noise; SAC: tanh(mu(s))) from
    env.reset(seed=seed). Nothing enters the replay buffer. If `frames` is a list, the rendered frames are appended
    to it (env in rgb_array mode)."""
    observation, _ = env.reset(seed=seed)
    if frames is not None:
        frames.append(env.render())
    states, rewards, done, terminated = [], [], False, False
    while not done:
        states.append(observation)
        observation, reward, terminated, truncated, _ = env.step(agent.choose_action(observation, evaluate=True))
        rewards.append(reward)
        done = terminated or truncated
        if frames is not None:
            frames.append(env.render())
    return Episode(np.asarray(states), np.asarray(rewards, dtype=np.float64), bool(terminated))


def evaluate_agent(agent: Any, env: Any, n_episodes: int, seed: int,
                   frames: list[np.ndarray] | None = None) -> list[float]:
    """Run n deterministic episodes (seeds seed, seed + 1, ...) and return their scores.

    If `frames` is a list, the first episode's rendered frames are appended to it (env in rgb_array mode).
    """
    return [play_episode(agent, env, seed + i, frames if i == 0 else None).score for i in range(n_episodes)]


class PeriodicEvaluation:
    """The evaluation during training: after the run's first episode and then at the first episode end past every
    `every` env steps, `n_episodes` deterministic episodes on an env instance of its own.

    Evaluation k plays seeds seed + k n, ..., seed + k n + n - 1 (fresh start states each time). The caller keeps
    the draws out of training's generators (TrainingRun forks torch's; the env is this instance's own), so a run
    learns the same however often it is evaluated. `rows` holds one dict per evaluation (what the _eval.csv holds).
    """

    def __init__(self, env_id: str, every: int, n_episodes: int, seed: int) -> None:
        self.env_id, self.every, self.n_episodes, self.seed = env_id, every, n_episodes, seed
        self.rows: list[dict] = []
        self._env: Any = None

    def due(self, total_steps: int) -> bool:
        """True after the first episode, then once total_steps reaches the next multiple of `every`."""
        return not self.rows or total_steps >= (self.rows[-1]["env_steps"] // self.every + 1) * self.every

    def play(self, agent: Any, episode: int, total_steps: int, minutes: float) -> list[Episode]:
        """Play this evaluation's episodes and append its row (mean, std, min, max of the scores, and its seconds)."""
        if self._env is None:
            self._env = make_env(self.env_id)
        start, first_seed = time.perf_counter(), self.seed + len(self.rows) * self.n_episodes
        episodes = [play_episode(agent, self._env, first_seed + i) for i in range(self.n_episodes)]
        scores = [e.score for e in episodes]
        self.rows.append(dict(episode=episode, env_steps=int(total_steps), minutes=float(minutes),
                              mean=float(np.mean(scores)), std=float(np.std(scores)), min=float(np.min(scores)),
                              max=float(np.max(scores)), episodes=self.n_episodes,
                              seconds=time.perf_counter() - start))
        return episodes

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


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


def evaluate_saved(cfg: Any, algorithm: str, build: Callable[[Any, dict], Any],
                   gif_file: Path | None = None) -> list[str]:
    """--evaluate N: load <chkpt_dir>/best/ (an `algorithm` agent built by build(env, sizes)), run N
    deterministic episodes.

    cfg.render shows them in a window; gif_file records the first one. Returns the lines to print: each
    episode's score, then the mean and standard deviation.
    """
    if cfg.render and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UsageError("--render needs a display and none was found (DISPLAY is not set); "
                         "--gif records an episode instead")
    render_mode = "human" if cfg.render else "rgb_array" if gif_file else None
    env = make_env(cfg.env, cfg.seed, render_mode=render_mode)
    expected = agent_sizes(cfg.env, env, algorithm)
    agent = load_agent(Path(cfg.chkpt_dir) / "best", expected, lambda sizes: build(env, sizes))
    frames = [] if gif_file and not cfg.render else None
    scores = evaluate_agent(agent, env, cfg.evaluate, cfg.seed, frames)
    env.close()
    lines = [note] if (note := env_note(cfg.env)) else []  # LunarLanderContinuous-v2 runs as gymnasium's -v3
    lines += [f"evaluation episode {i + 1:3d} score {score:8.1f}" for i, score in enumerate(scores)]
    lines.append(f"mean score {np.mean(scores):.1f} +- {np.std(scores):.1f} over {len(scores)} episodes")
    if frames:
        fps = env.metadata.get("render_fps", 30)
        lines.append(f"first episode ({len(frames)} frames) recorded in {save_gif(frames, gif_file, fps)}")
    return lines

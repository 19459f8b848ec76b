"""--evaluate: load the saved agent, run deterministic episodes, optionally record the first one as a GIF."""
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlharness.checkpoints import load_agent
from rlharness.envs import agent_sizes, env_note, make_env
from rlharness.errors import UsageError
from rlharness.files import atomic_path


def evaluate_agent(agent: Any, env: Any, n_episodes: int, seed: int,
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

"""Env steps per second of LunarLanderContinuous-v2 with and without the particle fix (rlharness.envs.NoParticles).

    python benchmarks/env_speed.py            # 3 repeats of a 1000-step hovering episode each way

A hovering controller keeps the main engine busy for the whole time limit, the case in which gym 0.26.2
piles up exhaust particles. Writes benchmarks/results/env_speed.md. The fix is gym's alone (gymnasium's -v3
makes no particles unless it renders), so this runs on the gym stack:

    RLHARNESS_GYM=gym .venv-gym/bin/python benchmarks/env_speed.py
"""
import contextlib
import io
import time
from pathlib import Path

import numpy as np

from rlharness import envs

ROOT = Path(__file__).resolve().parent.parent


def hover(env, obs: np.ndarray) -> np.ndarray:
    """gym's landing heuristic, told it is 0.5 lower than it is: it holds that height until the time limit."""
    from gym.envs.box2d.lunar_lander import heuristic
    return heuristic(env.unwrapped, obs - np.array([0, 0.5, 0, 0, 0, 0, 0, 0], dtype=np.float32))


def episode_rate(env, seed: int) -> tuple[float, int]:
    obs, _ = env.reset(seed=seed)
    steps, start = 0, time.perf_counter()
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(hover(env, obs))
        steps += 1
        done = terminated or truncated
    return steps / (time.perf_counter() - start), steps


def main() -> None:
    if envs.LIBRARY != "gym":
        raise SystemExit("env_speed.py measures gym 0.26.2's particle fix: run it with RLHARNESS_GYM=gym in the "
                         "venv of requirements-gym.txt (gymnasium's -v3 makes no particles unless it renders)")
    fixed = envs.make_env("LunarLanderContinuous-v2")
    with contextlib.redirect_stderr(io.StringIO()):
        plain = envs.gym.make("LunarLanderContinuous-v2", disable_env_checker=True)
    rates = {"gym 0.26.2 as is": [], "particles freed (rlharness.envs.NoParticles)": []}
    lengths = []
    for seed in range(3):  # alternate the two envs
        for name, env in zip(rates, (plain, fixed)):
            rate, steps = episode_rate(env, seed)
            rates[name].append(rate)
            lengths.append(steps)
    base = np.median(rates["gym 0.26.2 as is"])
    lines = [f"episodes of {min(lengths)}-{max(lengths)} steps, median over 3 seeds", "",
             "| env | steps/s | ratio |", "|---|---|---|"]
    lines += [f"| {name} | {np.median(r):.0f} | {np.median(r) / base:.1f}x |" for name, r in rates.items()]
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "env_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

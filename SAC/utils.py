"""The lecture's helper: the learning curve of a training run.

The machinery around training (flags, checkpoints, --resume, signals, diagnostics, evaluation) lives in the
shared package `rlharness`, outside this folder: nothing of it is in the lecture's algorithm box.
"""
from pathlib import Path

import numpy as np

from rlharness.plots import figure, plot_evaluations, save_figure

SOLVED_SCORE = {"LunarLanderContinuous-v2": 200.0}  # the 100-episode mean that counts as solving the env


def plot_learning_curve(x: list[int], scores: list[float], figure_file: Path, algo: str, env_id: str,
                        evaluations: list[dict] | None = None) -> Path:
    """Each episode's score and the running average of the last 100 (the lecture's "100 game average"), and the
    mean of each deterministic evaluation (`evaluations`: rows with "episode" and "mean") at the episode it followed.

    Draws the "solved" line for the envs in SOLVED_SCORE. The scores and evaluations are written beside the figure
    as CSVs by the training run (rlharness.run), so curves can be compared and re-plotted.
    """
    running_avg = np.zeros(len(scores))
    for i in range(len(running_avg)):
        running_avg[i] = np.mean(scores[max(0, i - 99):(i + 1)])
    plt, fig, (ax,) = figure()
    ax.plot(x, scores, color="tab:blue", alpha=0.35, lw=0.8, label="episode score")
    ax.plot(x, running_avg, color="tab:blue", lw=2, label="mean of last 100 episodes")
    if evaluations:
        plot_evaluations(ax, evaluations)  # each evaluation's mean, and a star at the one best/ holds
    if env_id in SOLVED_SCORE:
        ax.axhline(SOLVED_SCORE[env_id], color="tab:green", ls="--", lw=1, label=f"solved ({SOLVED_SCORE[env_id]:g})")
    ax.set(xlabel="episode", ylabel="score", title=f"{algo} on {env_id}")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return save_figure(plt, fig, figure_file)


def plot_alpha(rows: list[dict], figure_file: Path, title: str) -> Path:
    """SAC's temperature alpha and the policy's entropy estimate over training, with the target entropy -|A|.

    `rows` are the run's "alpha" record (Agent.diagnostics at the end of every few episodes).
    """
    plt, fig, (top, bottom) = figure(panels=2, height=6)
    steps = [r["env_steps"] for r in rows]
    top.plot(steps, [r["alpha"] for r in rows], ".-", color="tab:purple")
    if any(r["alpha"] > 0 for r in rows):  # --alpha 0 (no entropy bonus) stays on a linear axis
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
    return save_figure(plt, fig, figure_file)

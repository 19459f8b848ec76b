"""Curves as data and figures: the 100-episode running mean, the CSVs beside every figure, matplotlib helpers."""
from pathlib import Path
from typing import Any

import numpy as np

from rlharness.files import atomic_path, write_text_atomic


def running_mean(scores: list[float], window: int = 100) -> np.ndarray:
    """Mean of the last `window` scores at every episode (fewer at the start)."""
    x = np.asarray(scores, dtype=np.float64)
    c = np.cumsum(np.insert(x, 0, 0.0))
    n = np.minimum(np.arange(1, len(x) + 1), window)
    return (c[1:] - c[np.arange(1, len(x) + 1) - n]) / n


def write_scores_csv(scores: list[float], steps: list[int], csv_file: Path,
                     minutes: list[float] | None = None) -> Path:
    """One row per episode: episode, env_steps (at its end), score, avg100 and minutes (wall-clock training time
    at its end; empty when not given), written atomically."""
    avg = running_mean(scores)
    minutes = [f"{m:.4f}" for m in minutes] if minutes is not None else [""] * len(scores)
    lines = ["episode,env_steps,score,avg100,minutes"]
    lines += [f"{e},{t},{s:.4f},{a:.4f},{m}"
              for e, t, s, a, m in zip(range(1, len(scores) + 1), steps, scores, avg, minutes)]
    return write_text_atomic("\n".join(lines) + "\n", csv_file)


def write_csv(rows: list[dict], csv_file: Path) -> Path:
    """Rows of equal keys as a CSV with a header line, written atomically."""
    keys = list(rows[0])
    lines = [",".join(keys)] + [",".join(f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
                                for r in rows]
    return write_text_atomic("\n".join(lines) + "\n", csv_file)


def figure(panels: int = 1, height: float = 4.5) -> tuple[Any, Any, Any]:
    """A matplotlib (Agg) figure of `panels` stacked axes sharing x: (pyplot, figure, axes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(panels, 1, figsize=(8, height), sharex=True, squeeze=False)
    return plt, fig, axes[:, 0]


def plot_evaluations(ax: Any, evaluations: list[dict]) -> None:
    """The mean of each deterministic evaluation (rows with "episode", "mean", "episodes") at the episode it
    followed, and a star at the one best/ holds (the first of the best means, as best/ is saved)."""
    ax.plot([r["episode"] for r in evaluations], [r["mean"] for r in evaluations], "o-", color="tab:orange", ms=3,
            lw=1, label=f"deterministic evaluation (mean of {evaluations[-1]['episodes']:g} episodes)")
    best = max(evaluations, key=lambda r: r["mean"])
    ax.plot(best["episode"], best["mean"], "*", color="tab:orange", ms=14, label="best/: the best evaluation")


def save_figure(plt: Any, fig: Any, figure_file: Path) -> Path:
    """Lay out, write the figure atomically and close it."""
    fig.tight_layout()
    with atomic_path(figure_file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(figure_file)

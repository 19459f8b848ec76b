"""What the critic believes beside what the agent got: the maximization-bias record, and the agent's own records.

On the first episode and every few after it, the episode just played is read back from the replay buffer; the
critic's estimate at its states (agent.critic_estimates) is set beside the discounted return actually obtained.
The first episode of each evaluation during training (rlharness.evaluation) is set beside it the same way: the
critic against the return of the noise-free policy itself.
The agent may add records of its own (agent.diagnostics, e.g. SAC's temperature alpha and policy entropy).
"""
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlharness.plots import figure, save_figure, write_csv


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


def bias_row(agent: Any, states: np.ndarray, rewards: np.ndarray, terminated: bool, gamma: float) -> dict:
    """The critic's estimate at an episode's states beside the discounted return obtained from them (means).

    agent.critic_estimates gives the estimate per state (DDPG: Q(s, mu(s)); SAC: min_i Q_i(s, a~) and each Q_i).
    If a time limit cut the episode (not terminated), its last 1/(1 - gamma) states are left out: their obtained
    return misses what came after.
    """
    returns = discounted_returns(rewards, gamma)
    n = len(returns)
    if not terminated:
        horizon = round(1 / (1 - gamma)) if gamma < 1 else n
        keep = max(1, n - horizon)
        states, returns = states[:keep], returns[:keep]
    with torch.no_grad():
        states = torch.as_tensor(states, dtype=torch.float32, device=agent.device)
        estimates = {name: float(q.mean()) for name, q in agent.critic_estimates(states).items()}
    return dict(real_return=float(returns.mean()), **estimates, states=len(states))


def q_bias_row(agent: Any, episode_len: int, gamma: float) -> dict[str, float]:
    """bias_row for the episode just played, read back from the replay buffer (its last `episode_len`
    transitions): the critic against the return of the behaviour policy, exploration noise included."""
    memory = agent.memory
    index = last_episode(memory, episode_len)
    return bias_row(agent, memory.state_memory[index], memory.reward_memory[index],
                    bool(memory.terminal_memory[index[-1]]), gamma)


def agent_records(agent: Any, episode_len: int) -> dict[str, dict[str, float]]:
    """The agent's own records at the last episode's states: agent.diagnostics(states), {name: row}."""
    index = last_episode(agent.memory, episode_len)
    states = torch.as_tensor(agent.memory.state_memory[index], device=agent.device)
    with torch.no_grad():
        return agent.diagnostics(states)


def outside_training_rng(device: torch.device) -> Any:
    """torch's generators forked (and put back after): what a record or an evaluation draws (SAC's a~ ~ pi(.|s))
    leaves training's random stream as it was, so a run learns the same with or without them."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


class CriticRecord:
    """One training run's records: `q_bias` (training episodes, read back from the buffer), `q_bias_policy` (the
    first episode of each evaluation) and `records` (the agent's own, by name, e.g. SAC's "alpha").

    state() is what the training state keeps of them, load() puts it back; write() writes the CSVs and the figure.
    """

    def __init__(self, agent: Any, gamma: float) -> None:
        self.agent, self.gamma = agent, gamma
        self.q_bias: list[dict] = []
        self.q_bias_policy: list[dict] = []
        self.records: dict[str, list[dict]] = {}

    def after_episode(self, episode: int, episode_len: int, total_steps: int) -> None:
        """The critic record and the agent's own records for the training episode that just ended."""
        with outside_training_rng(self.agent.device):
            at = dict(episode=episode, env_steps=total_steps)
            self.q_bias.append(dict(at, **q_bias_row(self.agent, episode_len, self.gamma)))
            for name, row in agent_records(self.agent, episode_len).items():
                self.records.setdefault(name, []).append(dict(at, **row))

    def after_evaluation(self, episode: int, total_steps: int, played: Any) -> None:
        """bias_row for a deterministic episode (evaluation.Episode): the critic against the policy's own return."""
        with outside_training_rng(self.agent.device):
            row = bias_row(self.agent, played.states, played.rewards, played.terminated, self.gamma)
        self.q_bias_policy.append(dict(episode=episode, env_steps=total_steps, **row, score=played.score))

    def state(self) -> dict:
        return dict(q_bias=self.q_bias, q_bias_policy=self.q_bias_policy, records=self.records)

    def load(self, state: dict) -> None:
        self.q_bias = list(state.get("q_bias", []))
        self.q_bias_policy = list(state.get("q_bias_policy", []))
        # version 1 (before the shared package) kept SAC's one record, alpha, under its own key
        self.records = state.get("records", {"alpha": state["alpha"]} if state.get("alpha") else {})

    def write(self, file: Callable[[str], Path], title: str) -> list[str]:
        """Write <file("_q_bias.csv")>, _q_bias_policy.csv, _q_bias.png and a CSV per record; returns log lines."""
        lines = []
        if self.q_bias:
            write_csv(self.q_bias, file("_q_bias.csv"))
            if self.q_bias_policy:
                write_csv(self.q_bias_policy, file("_q_bias_policy.csv"))
            plot_q_bias(self.q_bias, file("_q_bias.png"), f"{title}: critic estimate vs return obtained",
                        self.agent.critic_labels, self.q_bias_policy)
            lines.append(f"critic estimate vs obtained return: {file('_q_bias.png')} (and .csv, _policy.csv)")
        for name, rows in self.records.items():
            lines.append(f"{name} record: {write_csv(rows, file(f'_{name}.csv'))}")
        return lines


def plot_q_bias(rows: list[dict], figure_file: Path, title: str, labels: dict[str, str],
                policy_rows: list[dict] | None = None) -> Path:
    """The critic's estimate against the return actually obtained, over training (and their difference).

    `rows` are the training episodes (behaviour policy, noise included), drawn solid; `policy_rows` the
    noise-free episodes, drawn dashed. `labels` names each estimate in the legend (the agent's critic_labels).
    """
    plt, fig, (top, bottom) = figure(panels=2, height=6)
    for records, style, what in ((rows, ".-", "training episodes"), (policy_rows or [], "x--", "deterministic policy")):
        if not records:
            continue
        steps = [r["env_steps"] for r in records]
        top.plot(steps, [r["real_return"] for r in records], style, color="k", lw=1.5,
                 label=f"discounted return obtained ({what})")
        for i, name in enumerate(k for k in records[0] if k in labels):
            label = f"{labels[name]} ({what})"
            top.plot(steps, [r[name] for r in records], style, color=f"C{i}", label=label, alpha=0.9)
            bottom.plot(steps, [r[name] - r["real_return"] for r in records], style, color=f"C{i}", label=label,
                        alpha=0.9)
    bottom.axhline(0, color="k", lw=0.8)
    top.set_ylabel("value (mean over the episode's states)")
    bottom.set_ylabel("estimate - obtained")
    bottom.set_xlabel("env steps")
    top.set_title(title)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    return save_figure(plt, fig, figure_file)

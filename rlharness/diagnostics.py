"""What the critic believes beside what the agent got: the maximization-bias record, and the agent's own records.

On the first episode and every few after it, the episode just played is read back from the replay buffer; the
critic's estimate at its states (agent.critic_estimates) is set beside the discounted return actually obtained.
The agent may add records of its own (agent.diagnostics, e.g. SAC's temperature alpha and policy entropy).
"""
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlharness.plots import figure, save_figure


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


def policy_bias_row(agent: Any, env: Any, seed: int, gamma: float) -> dict[str, float]:
    """bias_row for one noise-free episode (choose_action(s, evaluate=True)) played on `env`, an env instance of
    its own: the critic against the return of the policy itself, without the cost of exploration noise.

    Nothing of it enters the replay buffer or draws from training's generators.
    """
    observation, _ = env.reset(seed=seed)
    states, rewards, done, terminated = [], [], False, False
    while not done:
        states.append(observation)
        observation, reward, terminated, truncated, _ = env.step(agent.choose_action(observation, evaluate=True))
        rewards.append(reward)
        done = terminated or truncated
    row = bias_row(agent, np.asarray(states), np.asarray(rewards, dtype=np.float64), terminated, gamma)
    return dict(row, score=float(np.sum(rewards)))


def agent_records(agent: Any, episode_len: int) -> dict[str, dict[str, float]]:
    """The agent's own records at the last episode's states: agent.diagnostics(states), {name: row}."""
    index = last_episode(agent.memory, episode_len)
    states = torch.as_tensor(agent.memory.state_memory[index], device=agent.device)
    with torch.no_grad():
        return agent.diagnostics(states)


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

"""Ask a saved critic what it thinks of landing: Q(s, a) at hand-made LunarLander states near the pad.

    python benchmarks/critic_probe.py --algo sac --chkpt-dir tmp/sac/best
    python benchmarks/critic_probe.py --algo ddpg --chkpt-dir tmp/ddpg/best --out probe.md

Why: an agent that hovers a little above the pad (1,000-step episodes scoring about zero) usually has a critic
that rates touching down as worse than hovering. The lander comes to rest (+100) only with its legs down and the
main engine off for a while, and the agent learns what legs-down means from the touchdowns it has seen: in the
random warm-up most of them end in a crash (-100). This script shows that belief directly: the state is the
lander upright over the pad centre at height y with vertical speed vy and legs up or down, the action the main
engine off (-1), at half throttle (0.5) or full (1), side engines off (0). SAC's value is min(Q1, Q2), the one
its policy follows; DDPG's is Q. The observation is the env's own (x, y, vx, vy, angle, angular speed, legs),
in its own scaled units.
"""
import argparse
from pathlib import Path

import torch
from time_to_solve import ENV_ID, invocation, script_module

from rlharness.checkpoints import load_agent
from rlharness.cli import run_main
from rlharness.envs import agent_sizes, make_env
from rlharness.files import atomic_path

STATES = [  # (y, vy, legs down): hovering at decreasing heights, then touching down
    (0.30, 0.0, 0), (0.15, 0.0, 0), (0.10, 0.0, 0), (0.05, -0.05, 0), (0.02, -0.10, 0),
    (0.0, 0.0, 1), (0.0, -0.30, 1),
]
ACTIONS = {"main engine off": -1.0, "half throttle": 0.5, "full throttle": 1.0}


def q_value(algo: str, agent, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The critic's value that the policy follows: SAC min(Q1, Q2)(s, a), DDPG Q(s, a)."""
    with torch.no_grad():
        if algo == "sac":
            return torch.min(agent.Q1(states, actions), agent.Q2(states, actions)).view(-1)
        return agent.Q(states, actions).view(-1)


def probe(algo: str, chkpt_dir: Path, command: str) -> str:
    """The markdown table of Q at each STATES row for each of ACTIONS, and the command that made it."""
    main = script_module(algo, f"main_{algo}")
    cfg = main.Config()
    env = make_env(ENV_ID, 0)
    agent = load_agent(chkpt_dir, agent_sizes(ENV_ID, env, algo),
                       lambda sizes: main.make_agent(cfg, env, torch.device("cpu"), sizes))
    env.close()
    states = torch.tensor([[0.0, y, 0.0, vy, 0.0, 0.0, legs, legs] for y, vy, legs in STATES])
    lines = [f"Q(s, a) of {chkpt_dir} ({algo}; {'min(Q1, Q2)' if algo == 'sac' else 'Q'}), the lander upright "
             "over the pad centre, side engines off", "",
             "| height y | vertical speed vy | legs | " + " | ".join(f"a: {name}" for name in ACTIONS) + " |",
             "|---|---|---|" + "---|" * len(ACTIONS)]
    values = {name: q_value(algo, agent, states, torch.tensor([[a, 0.0]]).expand(len(STATES), 2))
              for name, a in ACTIONS.items()}
    for i, (y, vy, legs) in enumerate(STATES):
        cells = " | ".join(f"{values[name][i]:.1f}" for name in ACTIONS)
        lines.append(f"| {y:.2f} | {vy:+.2f} | {'down' if legs else 'up'} | {cells} |")
    lines += ["", f"command: `{command}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=["ddpg", "sac"], required=True)
    parser.add_argument("--chkpt-dir", required=True, help="a checkpoint folder: tmp/<algo>/best or latest")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    text = probe(args.algo, Path(args.chkpt_dir), invocation("critic_probe.py", argv))
    print(text, end="")
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            Path(tmp).write_text(text)
    return 0


if __name__ == "__main__":
    run_main(main)

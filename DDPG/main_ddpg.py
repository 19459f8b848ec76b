"""Train DDPG on LunarLanderContinuous-v2 (the lecture's Code Ex. 1), or evaluate the saved agent.

    python DDPG/main_ddpg.py                    # train with the tuned defaults, checkpoints in tmp/ddpg/
    python DDPG/main_ddpg.py --evaluate 10      # load tmp/ddpg/best/, run 10 deterministic episodes
    python DDPG/main_ddpg.py --help             # every flag, named after the lecture's symbol

The loop below is the outer loop of the lecture's algorithm box: for each episode, reset the noise process,
act with a = mu(s) + N, store the transition, and call agent.learn() once per environment step.
"""
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from rlharness.cli import BOTH, RunConfig, flag, read_config, run_main, select_device
from rlharness.envs import agent_sizes, make_env
from rlharness.evaluation import evaluate_saved
from rlharness.gpu import graphed_learn
from rlharness.memory import check_memory
from rlharness.run import TrainingRun
from rlharness.seeding import seed_everything, stream_seeds
from rlharness.signals import StopRequest

from ddpg_torch import Agent
from noise import GaussianActionNoise, NoNoise, OUActionNoise
from utils import plot_learning_curve

ROOT = Path(__file__).resolve().parent.parent  # the repository: tmp/ and plots/ live here
ALGORITHM = "ddpg"  # written into agent.json: a checkpoint of another algorithm is refused


@dataclass
class Config(RunConfig):
    """DDPG's hyperparameters, the defaults tuned (docs/hyperparameters.md); RunConfig adds the flags of every run."""
    batch_size: int = flag(128, "minibatch size N sampled from R", "> 0")
    buffer_size: int = flag(1_000_000, "replay buffer R capacity (max_size)", "> 0")
    gamma: float = flag(0.99, "discount factor gamma", "in (0, 1]")
    tau: float = flag(0.005, "soft target update rate tau: theta' <- tau theta + (1 - tau) theta'", "in (0, 1]")
    target_networks: bool = flag(True, "target networks Q' and mu', updated by tau; --no-target-networks computes y "
                                 "with the online Q and mu (--tau 1 is not the same: its target lags one update)")
    lr_actor: float = flag(1e-4, "actor mu learning rate (the lecture's alpha)", "> 0")
    lr_critic: float = flag(1e-3, "critic Q learning rate (the lecture's beta)", "> 0")
    critic_weight_decay: float = flag(0.0, "L2 weight decay on the critic Q (the DDPG paper's and the lecture's: "
                                      "0.01)", ">= 0")
    fc1_dims: int = flag(256, "first hidden layer of mu and Q", "> 0")
    fc2_dims: int = flag(256, "second hidden layer of mu and Q", "> 0")
    layer_norm: bool = flag(False, "LayerNorm after each hidden layer (the lecture's code uses it)")
    noise: str = flag("ou", "exploration noise N: ou (Ornstein-Uhlenbeck), gaussian, or none (N = 0: after the "
                      "warm-up the agent acts with mu(s) alone)", choices=("ou", "gaussian", "none"))
    sigma: float = flag(0.15, "noise scale sigma (in units of the normalised action)", "> 0",
                        needs="--noise ou|gaussian")
    theta: float = flag(0.2, "OU mean-reversion rate theta", "> 0", needs="--noise ou")
    dt: float = flag(1e-2, "OU time step dt", "> 0", needs="--noise ou")
    learning_starts: int = flag(10_000, "env steps of uniform random actions before the first update", ">= 0")
    chkpt_dir: str = flag(str(ROOT / "tmp" / "ddpg"), "checkpoint folder (best/ and latest/ inside)", used_in=BOTH)
    plot_dir: str = flag(str(ROOT / "plots"), "folder for the score curves and their CSVs (and --gif)", used_in=BOTH)


def make_agent(cfg: Config, env, device: torch.device, sizes: dict) -> Agent:
    """Build the Agent for `env` with the network shape in `sizes` and noise N chosen by --noise; the buffer and
    the noise draw from their own streams of --seed."""
    n_actions, seeds = sizes["n_actions"], stream_seeds(cfg.seed)
    if cfg.noise == "ou":
        noise = OUActionNoise(mu=np.zeros(n_actions), sigma=cfg.sigma, theta=cfg.theta, dt=cfg.dt,
                              seed=seeds["exploration"])
    elif cfg.noise == "gaussian":
        noise = GaussianActionNoise(mu=np.zeros(n_actions), sigma=cfg.sigma, seed=seeds["exploration"])
    else:  # none: N = 0
        noise = NoNoise(mu=np.zeros(n_actions))
    return Agent(input_dims=sizes["input_dims"], n_actions=n_actions, action_low=env.action_space.low,
                 action_high=env.action_space.high, lr_actor=cfg.lr_actor, lr_critic=cfg.lr_critic,
                 critic_weight_decay=cfg.critic_weight_decay, tau=cfg.tau, target_networks=cfg.target_networks,
                 gamma=cfg.gamma, max_size=cfg.buffer_size, fc1_dims=sizes["fc1_dims"], fc2_dims=sizes["fc2_dims"],
                 batch_size=cfg.batch_size, layer_norm=sizes["layer_norm"], noise=noise, device=device,
                 seed=seeds["buffer"])


def train(cfg: Config, device: torch.device) -> int:
    """The lecture's training loop: episodes of act, store, learn; keep the best agent, judged by deterministic
    evaluation episodes (the lecture judges by the 100-game average, which includes the noise N)."""
    seeds = stream_seeds(cfg.seed)  # an independent seed for each random stream, all from --seed
    env = make_env(cfg.env, seeds["action_space"])
    sizes = agent_sizes(cfg.env, env, ALGORITHM, fc1_dims=cfg.fc1_dims, fc2_dims=cfg.fc2_dims,
                        layer_norm=cfg.layer_norm)
    check_memory(cfg, sizes, device)  # a buffer or networks too large for this machine: one line, before allocating
    agent = make_agent(cfg, env, device, sizes)
    learn = graphed_learn(agent, cfg.cuda_graph)  # agent.learn; on CUDA replayed as one CUDA graph (docs/gpu.md)
    curve = partial(plot_learning_curve, algo="DDPG", env_id=cfg.env)  # redrawn at every save of latest/
    run = TrainingRun(agent, env, sizes, cfg, plot_curve=curve)  # checkpoints, --resume, CSVs, critic record
    score_history, best_score, total_steps = run.begin()  # [], -inf, 0; or where --resume left off

    seed = None if score_history else seeds["env"]  # the env is seeded at the run's first episode only
    with StopRequest() as stop:  # Ctrl-C or SIGTERM: finish the current step, then save and plot below
        for i in range(len(score_history), cfg.episodes):
            observation, _ = env.reset(seed=seed)
            seed = None
            agent.noise.reset()
            done, score, losses = False, 0.0, None
            while not done and total_steps < cfg.max_steps and not stop:
                if total_steps < cfg.learning_starts:
                    action = env.action_space.sample()
                else:
                    action = agent.choose_action(observation)
                observation_, reward, terminated, truncated, _ = env.step(action)
                agent.remember(observation, action, reward, observation_, terminated)
                if total_steps >= cfg.learning_starts:
                    losses = learn()
                score += reward
                observation = observation_
                done = terminated or truncated
                total_steps += 1
            if not done:  # the step budget ran out or a stop was asked for mid-episode: no score for it
                break
            run.check_losses(losses, total_steps)  # NaN or inf: stop before anything is saved
            score_history.append(score)
            avg_score = np.mean(score_history[-100:])
            eval_score = run.evaluate_if_due(total_steps)  # every --eval-every steps: mean of deterministic episodes
            if eval_score is not None and eval_score > best_score:
                best_score = eval_score
                run.save_best()  # agent.save_models() into tmp/ddpg/best/, what --evaluate loads
            print(f"episode {i + 1:4d} score {score:8.1f} average score {avg_score:8.1f}",
                  run.end_episode(total_steps, best_score), flush=True)  # + latest/ every --save-every
            if len(score_history) >= 100 and avg_score >= cfg.stop_score:
                print(f"reached a 100-episode mean of {avg_score:.1f} >= {cfg.stop_score:g}: stopping")
                break
        env.close()
        if stop:
            print(f"stopped by {stop.signal_name} after {total_steps} env steps: saving")
        run.finish(total_steps, best_score)  # latest/, the CSVs, the curve; a signal now waits until they are written
    return 0


def main(argv: list[str] | None = None) -> int:
    cfg = read_config(Config, argv, __doc__.splitlines()[0], ALGORITHM)  # --resume: the saved run's flags
    device = select_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    if cfg.evaluate:  # load tmp/ddpg/best/, run N deterministic episodes, train nothing
        gif_file = Path(cfg.plot_dir) / f"ddpg_{cfg.env}.gif" if cfg.gif else None
        lines = evaluate_saved(cfg, ALGORITHM, lambda env, sizes: make_agent(cfg, env, device, sizes), gif_file)
        print("\n".join(lines))
        return 0
    return train(cfg, device)


if __name__ == "__main__":
    run_main(main)

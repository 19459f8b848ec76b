"""Train SAC on LunarLanderContinuous-v2 or MuJoCo HalfCheetah-v4 (the lecture's Code Ex. 2), or evaluate it.

    python SAC/main_sac.py                          # train with the tuned defaults, checkpoints in tmp/sac/
    python SAC/main_sac.py --env HalfCheetah-v4 --max-steps 300000 --learning-starts 10000
    python SAC/main_sac.py --evaluate 10            # load tmp/sac/best/, run 10 deterministic episodes
    python SAC/main_sac.py --help                   # every flag, named after the lecture's symbol

The loop below is the outer loop of the lecture's algorithm box: observe s, select a ~ pi(.|s) (uniformly
random actions for the first --learning-starts steps), execute a, store (s, a, r, s', d) in D, and every
--update-every steps run that many updates.
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

from sac_torch import Agent
from utils import plot_alpha, plot_learning_curve

ROOT = Path(__file__).resolve().parent.parent  # the repository: tmp/ and plots/ live here
ALGORITHM = "sac"  # written into agent.json: a checkpoint of another algorithm is refused


@dataclass
class Config(RunConfig):
    """SAC's hyperparameters, the defaults tuned (docs/hyperparameters.md); RunConfig adds the flags of every run."""
    batch_size: int = flag(128, "minibatch size |B| sampled from D", "> 0")
    buffer_size: int = flag(1_000_000, "replay buffer D capacity (max_size)", "> 0")
    gamma: float = flag(0.99, "discount factor gamma", "in (0, 1]")
    tau: float = flag(0.02, "target update rate tau: phi' <- tau phi + (1 - tau) phi' (the slide's rho = 1 - tau)",
                      "in (0, 1]")
    lr_actor: float = flag(1e-3, "policy pi learning rate", "> 0")
    lr_critic: float = flag(1e-3, "Q1, Q2 learning rate", "> 0")
    lr_alpha: float = flag(1e-3, "log alpha learning rate (automatic entropy tuning)", "> 0", needs="--alpha auto")
    alpha: str = flag("auto", "entropy temperature alpha: 'auto' tunes it towards entropy -|A|, a number fixes it "
                      "(0: no entropy bonus, the lecture's claim that it keeps pi exploring switched off)",
                      "'auto' or a number >= 0")
    critics: int = flag(2, "critics Q_i: 2 takes min_i Q_i (the double-Q trick against the maximization bias), 1 uses "
                        "Q1 alone", choices=(1, 2))
    target_networks: bool = flag(True, "target critics Q'_i, updated by tau; --no-target-networks computes y with the "
                                 "online Q_i (--tau 1 is not the same: its target lags one update)")
    target_entropy: str = flag("auto", "the entropy that automatic tuning steers pi towards: 'auto' is -|A| (the "
                               "paper's), a number sets it", "'auto' or a number", needs="--alpha auto")
    fc1_dims: int = flag(128, "first hidden layer of pi, Q1 and Q2", "> 0")
    fc2_dims: int = flag(128, "second hidden layer of pi, Q1 and Q2", "> 0")
    learning_starts: int = flag(1_000, "env steps of uniform random actions before the first update", ">= 0")
    update_every: int = flag(1, "after this many env steps, run this many updates", "> 0")
    chkpt_dir: str = flag(str(ROOT / "tmp" / "sac"), "checkpoint folder (best/ and latest/ inside)", used_in=BOTH)
    plot_dir: str = flag(str(ROOT / "plots"), "folder for the score curves and their CSVs (and --gif)", used_in=BOTH)


def make_agent(cfg: Config, env, device: torch.device, sizes: dict) -> Agent:
    """Build the Agent for `env` with the network shape in `sizes`; the buffer draws from its own stream of --seed."""
    return Agent(input_dims=sizes["input_dims"], n_actions=sizes["n_actions"], action_low=env.action_space.low,
                 action_high=env.action_space.high, lr_actor=cfg.lr_actor, lr_critic=cfg.lr_critic,
                 lr_alpha=cfg.lr_alpha, alpha=None if cfg.alpha == "auto" else float(cfg.alpha),
                 target_entropy=None if cfg.target_entropy == "auto" else float(cfg.target_entropy), tau=cfg.tau,
                 gamma=cfg.gamma, max_size=cfg.buffer_size, fc1_dims=sizes["fc1_dims"], fc2_dims=sizes["fc2_dims"],
                 batch_size=cfg.batch_size, n_critics=cfg.critics, target_networks=cfg.target_networks,
                 device=device, seed=stream_seeds(cfg.seed)["buffer"])


def train(cfg: Config, device: torch.device) -> int:
    """The lecture's loop: act with pi, store in D, and every update_every steps do that many updates; keep the
    best agent, judged by deterministic evaluation episodes (the lecture judges by the 100-game average)."""
    seeds = stream_seeds(cfg.seed)  # an independent seed for each random stream, all from --seed
    env = make_env(cfg.env, seeds["action_space"])
    sizes = agent_sizes(cfg.env, env, ALGORITHM, fc1_dims=cfg.fc1_dims, fc2_dims=cfg.fc2_dims)
    check_memory(cfg, sizes, device)  # a buffer or networks too large for this machine: one line, before allocating
    agent = make_agent(cfg, env, device, sizes)
    learn = graphed_learn(agent, cfg.cuda_graph)  # agent.learn; on CUDA replayed as one CUDA graph (docs/gpu.md)
    curve = partial(plot_learning_curve, algo="SAC", env_id=cfg.env)  # redrawn at every save of latest/
    run = TrainingRun(agent, env, sizes, cfg, plot_curve=curve)  # checkpoints, --resume, CSVs, critic and alpha records
    score_history, best_score, total_steps = run.begin()  # [], -inf, 0; or where --resume left off

    seed = None if score_history else seeds["env"]  # the env is seeded at the run's first episode only
    with StopRequest() as stop:  # Ctrl-C or SIGTERM: finish the current step, then save and plot below
        for i in range(len(score_history), cfg.episodes):
            observation, _ = env.reset(seed=seed)
            seed = None
            done, score, losses = False, 0.0, None
            while not done and total_steps < cfg.max_steps and not stop:
                if total_steps < cfg.learning_starts:
                    action = env.action_space.sample()
                else:
                    action = agent.choose_action(observation)
                observation_, reward, terminated, truncated, _ = env.step(action)
                agent.remember(observation, action, reward, observation_, terminated)
                score += reward
                observation = observation_
                done = terminated or truncated
                total_steps += 1
                if total_steps > cfg.learning_starts and total_steps % cfg.update_every == 0:
                    for _ in range(cfg.update_every):
                        losses = learn()
            if not done:  # the step budget ran out or a stop was asked for mid-episode: no score for it
                break
            run.check_losses(losses, total_steps)  # NaN or inf: stop before anything is saved
            score_history.append(score)
            avg_score = np.mean(score_history[-100:])
            eval_score = run.evaluate_if_due(total_steps)  # every --eval-every steps: mean of deterministic episodes
            if eval_score is not None and eval_score > best_score:
                best_score = eval_score
                run.save_best()  # agent.save_models() into tmp/sac/best/, what --evaluate loads
            print(f"episode {i + 1:4d} score {score:8.1f} average score {avg_score:8.1f}",
                  run.end_episode(total_steps, best_score), flush=True)  # + latest/ every --save-every
            if len(score_history) >= 100 and avg_score >= cfg.stop_score:
                print(f"reached a 100-episode mean of {avg_score:.1f} >= {cfg.stop_score:g}: stopping")
                break
        env.close()
        if stop:
            print(f"stopped by {stop.signal_name} after {total_steps} env steps: saving")
        run.finish(total_steps, best_score)  # latest/, the CSVs, the curve; a signal now waits until they are written
        if alpha := run.critic_record.records.get("alpha"):  # the temperature, recorded with the critic
            plot_alpha(alpha, run.file("_alpha.png"), f"SAC on {cfg.env}: alpha and policy entropy")
    return 0


def main(argv: list[str] | None = None) -> int:
    cfg = read_config(Config, argv, __doc__.splitlines()[0], ALGORITHM)  # --resume: the saved run's flags
    device = select_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    if cfg.evaluate:  # load tmp/sac/best/, run N deterministic episodes, train nothing
        gif_file = Path(cfg.plot_dir) / f"sac_{cfg.env}.gif" if cfg.gif else None
        lines = evaluate_saved(cfg, ALGORITHM, lambda env, sizes: make_agent(cfg, env, device, sizes), gif_file)
        print("\n".join(lines))
        return 0
    return train(cfg, device)


if __name__ == "__main__":
    run_main(main)

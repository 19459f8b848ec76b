"""Seeding, and the state of every random generator a training run draws from (what --resume puts back)."""
import random
from typing import Any

import numpy as np
import torch

# A run's random streams; each gets its own seed, spawned from --seed, so no two share a sequence of numbers.
STREAMS = ("python", "numpy", "torch", "env", "action_space", "buffer", "exploration", "evaluation")


def stream_seeds(seed: int) -> dict[str, int]:
    """One independent seed per random stream (STREAMS), all derived from `seed` by numpy's SeedSequence.spawn.

    torch's drives the networks' initialisation and SAC's sampling; env's the env's resets and dynamics;
    action_space's the warm-up's random actions; buffer's the minibatches; exploration's an agent's own
    exploration noise (DDPG's N); evaluation's the start states of the deterministic episodes that evaluate the
    agent during training (rlharness.evaluation.PeriodicEvaluation).
    """
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: int(child.generate_state(1)[0]) for name, child in zip(STREAMS, children)}


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators from their streams of `seed` (the env, the buffer and
    the noise get theirs where they are made)."""
    seeds = stream_seeds(seed)
    random.seed(seeds["python"])
    np.random.seed(seeds["numpy"])
    torch.manual_seed(seeds["torch"])


def rng_states(env: Any, agent: Any) -> dict:
    """The state of every generator a training run draws from, as plain data (loads with weights_only).

    The global ones, the env's and its action space's here; the agent adds its own (agent.rng_state(): the
    buffer's sampler, DDPG's noise process).
    """
    numpy_global = np.random.get_state()
    states = {"python": random.getstate(), "torch": torch.get_rng_state(),
              "numpy": (numpy_global[0], torch.from_numpy(numpy_global[1].astype(np.int64)), *numpy_global[2:]),
              "env": env.unwrapped.np_random.bit_generator.state,
              "action_space": env.action_space.np_random.bit_generator.state,
              **agent.rng_state()}
    if torch.cuda.is_available() and agent.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(agent.device)
    return states


def set_rng_states(states: dict, env: Any, agent: Any) -> None:
    """Put back what rng_states() saved, so the resumed run draws the same numbers as an uninterrupted one."""
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    env.unwrapped.np_random.bit_generator.state = states["env"]
    env.action_space.np_random.bit_generator.state = states["action_space"]
    agent.set_rng_state(states)
    if "cuda" in states and agent.device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], agent.device)

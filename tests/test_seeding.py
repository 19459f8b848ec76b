"""rlharness.seeding: one --seed, an independent random stream for each consumer, the same run every time."""
import numpy as np

from rlharness.envs import make_env
from rlharness.seeding import STREAMS, stream_seeds


def test_each_stream_gets_its_own_seed_and_the_same_seed_gives_the_same_seeds():
    seeds = stream_seeds(0)
    assert set(seeds) == set(STREAMS)
    assert len(set(seeds.values())) == len(STREAMS)  # no two streams share a seed
    assert seeds == stream_seeds(0) and seeds != stream_seeds(1)
    assert all(0 <= s < 2**32 for s in seeds.values())  # valid for numpy's legacy seed, torch and gym


def test_the_env_and_its_action_space_draw_different_numbers():
    """Seeded alike, the env's dispersion draws and the warm-up's random actions were the same sequence."""
    seeds = stream_seeds(0)
    env = make_env("LunarLanderContinuous-v2", seeds["action_space"])
    env.reset(seed=seeds["env"])
    env_draws = env.unwrapped.np_random.uniform(-1, 1, size=16)
    action_draws = np.concatenate([env.action_space.sample() for _ in range(8)])
    assert not np.allclose(env_draws, action_draws)
    env.close()


def test_the_buffer_and_the_noise_draw_different_numbers(ddpg):
    seeds = stream_seeds(0)
    buffer = ddpg.buffer.ReplayBuffer(100, 3, 1, seed=seeds["buffer"])
    noise = ddpg.noise.GaussianActionNoise(mu=np.zeros(1), sigma=1.0, seed=seeds["exploration"])
    assert not np.allclose(buffer.rng.standard_normal(8), noise.rng.standard_normal(8))

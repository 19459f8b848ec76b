"""The environment helpers in utils.py: the particle fix leaves LunarLander's dynamics bit-identical."""
import numpy as np
import pytest


def rollout(env, seed: int, steps: int = 600):
    """Fly gym's landing heuristic with a little seeded noise: engines fire often, so particles pile up."""
    from gym.envs.box2d.lunar_lander import heuristic
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations, rewards, ends = [obs], [], []
    for _ in range(steps):
        action = np.clip(heuristic(env.unwrapped, obs) + rng.normal(0, 0.3, 2), -1, 1)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        ends.append((terminated, truncated))
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), ends


@pytest.mark.parametrize("seed", [0, 1])
def test_freeing_particles_keeps_the_trajectory_bit_identical(ddpg, seed):
    utils = ddpg.utils
    fixed = utils.make_env("LunarLanderContinuous-v2", seed)
    assert isinstance(fixed, utils.NoParticles)
    with utils.contextlib.redirect_stderr(utils.io.StringIO()):
        plain = utils.gym.make("LunarLanderContinuous-v2", disable_env_checker=True)
    obs_fixed, rew_fixed, end_fixed = rollout(fixed, seed)
    assert fixed.unwrapped.particles == []  # freed after every step
    obs_plain, rew_plain, end_plain = rollout(plain, seed)
    assert len(plain.unwrapped.particles) > 50  # the unfixed env piles them up
    assert len(rew_fixed) > 100
    assert np.array_equal(obs_fixed, obs_plain)
    assert np.array_equal(rew_fixed, rew_plain)
    assert end_fixed == end_plain


def test_rendering_env_keeps_its_particles(ddpg):
    env = ddpg.utils.make_env("LunarLanderContinuous-v2", 0, render_mode="rgb_array")
    assert not isinstance(env, ddpg.utils.NoParticles)


def test_make_env_rejects_unknown_and_discrete(ddpg):
    with pytest.raises(ddpg.utils.UsageError, match="unknown environment id"):
        ddpg.utils.make_env("NoSuchEnv-v0")
    with pytest.raises(ddpg.utils.UsageError, match="Discrete action space"):
        ddpg.utils.make_env("CartPole-v1")


def test_running_mean_matches_a_plain_loop(ddpg):
    scores = np.random.default_rng(0).normal(size=250)
    expected = [scores[max(0, i - 99):i + 1].mean() for i in range(250)]
    assert np.allclose(ddpg.utils.running_mean(list(scores)), expected)


def test_plot_learning_curve_writes_png_and_csv(ddpg, tmp_path):
    csv_file = ddpg.utils.plot_learning_curve([1.0, 2.0, 6.0], [10, 20, 30], tmp_path / "x" / "c.png", "t",
                                              minutes=[0.5, 1.0, 1.25])
    assert (tmp_path / "x" / "c.png").read_bytes()[:4] == b"\x89PNG"
    rows = csv_file.read_text().splitlines()
    assert rows[0] == "episode,env_steps,score,avg100,minutes" and rows[3] == "3,30,6.0000,3.0000,1.2500"

"""rlharness.envs: the particle fix leaves LunarLander's dynamics bit-identical, one-line errors for unusable envs,
agent_sizes, and MuJoCo (HalfCheetah-v4) trained with no code change."""
import contextlib
import io

import numpy as np
import pytest

from rlharness import envs
from rlharness.cli import run_main
from rlharness.errors import UsageError


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
def test_freeing_particles_keeps_the_trajectory_bit_identical(seed):
    fixed = envs.make_env("LunarLanderContinuous-v2", seed)
    assert isinstance(fixed, envs.NoParticles)
    with contextlib.redirect_stderr(io.StringIO()):
        plain = envs.gym.make("LunarLanderContinuous-v2", disable_env_checker=True)
    obs_fixed, rew_fixed, end_fixed = rollout(fixed, seed)
    assert fixed.unwrapped.particles == []  # freed after every step
    obs_plain, rew_plain, end_plain = rollout(plain, seed)
    assert len(plain.unwrapped.particles) > 50  # the unfixed env piles them up
    assert len(rew_fixed) > 100
    assert np.array_equal(obs_fixed, obs_plain)
    assert np.array_equal(rew_fixed, rew_plain)
    assert end_fixed == end_plain


def test_rendering_env_keeps_its_particles():
    env = envs.make_env("LunarLanderContinuous-v2", 0, render_mode="rgb_array")
    assert not isinstance(env, envs.NoParticles)


def test_make_env_rejects_unknown_and_discrete():
    with pytest.raises(UsageError, match="unknown environment id"):
        envs.make_env("NoSuchEnv-v0")
    with pytest.raises(UsageError, match="Discrete action space"):
        envs.make_env("CartPole-v1")


def test_make_env_seeds_the_action_space_and_agent_sizes_reads_the_spaces():
    draws = [envs.make_env("Pendulum-v1", 4).action_space.sample() for _ in range(2)]
    assert np.array_equal(*draws)
    env = envs.make_env("Pendulum-v1")
    assert envs.agent_sizes("Pendulum-v1", env, "ddpg", fc1_dims=8) == dict(
        algorithm="ddpg", env="Pendulum-v1", input_dims=3, n_actions=1, fc1_dims=8)


def test_halfcheetah_smoke_run(sac, tmp_path, capsys):
    """SAC trains on MuJoCo HalfCheetah-v4 (17-dim state, 6 torques) with no code change."""
    argv = ["--env", "HalfCheetah-v4", "--max-steps", "300", "--learning-starts", "100", "--fc1-dims", "32",
            "--fc2-dims", "32", "--batch-size", "32", "--chkpt-dir", str(tmp_path / "c"), "--plot-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        run_main(sac.main_sac.main, argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    assert "0 episodes, 300 env steps" in out
    sizes = (tmp_path / "c" / "latest" / "agent.json").read_text()
    assert '"input_dims": 17' in sizes and '"n_actions": 6' in sizes

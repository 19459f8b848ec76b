"""rlharness.envs: which library runs and the lecture's env names in it, gym 0.26.2's particle fix leaves
LunarLander's dynamics bit-identical, one-line errors for unusable envs, agent_sizes, and MuJoCo (HalfCheetah)
trained with no code change.

The gym-only tests run in the legacy smoke step of .ci/run (requirements-gym.txt, RLHARNESS_GYM=gym), where
gymnasium is installed beside gym, so the test that flies both libraries' landers runs there too.
"""
import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from rlharness import envs
from rlharness.cli import run_main
from rlharness.errors import UsageError

gym_only = pytest.mark.skipif(envs.LIBRARY != "gym", reason="gym 0.26.2 is not the library here")
both_libraries = pytest.mark.skipif(not all(importlib.util.find_spec(name) for name in ("gym", "gymnasium")),
                                    reason="needs gym 0.26.2 and gymnasium installed side by side")


def rollout(env, seed: int, steps: int = 600, heuristic=None):
    """Fly the library's landing heuristic with a little seeded noise: engines fire often, so particles pile up."""
    heuristic = heuristic or importlib.import_module(f"{envs.LIBRARY}.envs.box2d.lunar_lander").heuristic
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


@gym_only
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


@pytest.mark.skipif(envs.LIBRARY != "gymnasium", reason="gymnasium is not the library here")
def test_gymnasium_runs_the_lecture_names_as_v3_and_v5_and_makes_no_particles():
    assert envs.runs_as("LunarLanderContinuous-v2") == "LunarLanderContinuous-v3"
    assert envs.runs_as("HalfCheetah-v4") == "HalfCheetah-v5" and envs.runs_as("Pendulum-v1") == "Pendulum-v1"
    assert "runs as gymnasium" in envs.env_note("LunarLanderContinuous-v2") and envs.env_note("Pendulum-v1") is None
    env = envs.make_env("LunarLanderContinuous-v2", 0)
    assert env.spec.id == "LunarLanderContinuous-v3" and not isinstance(env, envs.NoParticles)
    observations, rewards, _ = rollout(env, 0)
    assert len(rewards) > 100 and env.unwrapped.particles == []  # -v3 makes particles only when it renders


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="mujoco is not installed")
@pytest.mark.skipif(envs.LIBRARY != "gymnasium", reason="gymnasium is not the library here")
def test_gymnasium_halfcheetah_v4_and_v5_are_the_same_dynamics():
    """Why the lecture's HalfCheetah-v4 may run as -v5: the same states and rewards, step for step."""
    runs = []
    for env_id in ("HalfCheetah-v4", "HalfCheetah-v5"):
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # -v4 warns that -v5 is out
            env = envs.gym.make(env_id, disable_env_checker=True)
        rng, (obs, _) = np.random.default_rng(0), env.reset(seed=3)
        trajectory = [obs]
        for _ in range(300):
            obs, reward, *_ = env.step(rng.uniform(-1, 1, 6))
            trajectory.append(np.append(obs, reward))
        runs.append(np.concatenate(trajectory))
    assert np.array_equal(*runs)


@both_libraries
def test_gymnasium_v3_flies_as_gym_v2():
    """The lecture's gym -v2 and gymnasium's -v3 with the same seeds and actions: the same episodes, up to the
    float32 (gym) and float64 (gymnasium) cast of the action."""
    import gym
    import gymnasium
    from gym.envs.box2d.lunar_lander import heuristic
    for seed in range(3):
        with contextlib.redirect_stderr(io.StringIO()):
            old = gym.make("LunarLanderContinuous-v2", disable_env_checker=True)
        new = gymnasium.make("LunarLanderContinuous-v3", disable_env_checker=True)
        (obs_old, rew_old, ends_old), (obs_new, rew_new, ends_new) = (rollout(env, seed, 1000, heuristic)
                                                                      for env in (old, new))
        assert ends_old == ends_new and ends_old[-1][0]  # the same length, landed (terminated) in both
        assert np.abs(obs_old - obs_new).max() < 1e-3 and abs(rew_old.sum() - rew_new.sum()) < 1e-2


def test_the_library_is_chosen_by_rlharness_gym_in_one_line():
    def choose(value):
        return subprocess.run([sys.executable, "-c", "import rlharness.envs as e; print(e.LIBRARY)"],
                              capture_output=True, text=True, env={**os.environ, "RLHARNESS_GYM": value})
    assert choose(envs.LIBRARY).stdout.strip() == envs.LIBRARY
    bad = choose("gymnasium2")
    assert bad.returncode == 1 and bad.stderr.strip() == "error: RLHARNESS_GYM='gymnasium2': expected gymnasium or gym"
    other = "gym" if envs.LIBRARY == "gymnasium" else "gymnasium"
    if importlib.util.find_spec(other) is None:
        missing = choose(other)
        assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
        assert f"RLHARNESS_GYM={other}, but {other} is not installed" in missing.stderr


@gym_only
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

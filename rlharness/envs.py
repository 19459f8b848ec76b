"""Environments: gym.make with one-line errors, LunarLander's particle fix, MuJoCo rendered off-screen."""
import contextlib
import io
import os
import sys

from rlharness.errors import UsageError

with contextlib.redirect_stderr(io.StringIO()):
    import gym  # gym 0.26.2 prints an "unmaintained" notice on import; our users cannot act on it


class NoParticles(gym.Wrapper):
    """Frees LunarLander's exhaust particles after every step when nothing is rendered.

    gym 0.26.2 only frees them while rendering, so a long hovering episode piles up Box2D bodies and the env
    slows down (29.8x in a 1000-step hovering episode: benchmarks/results/env_speed.md). Particles are
    decoration: they collide with the ground only, never the lander, so destroying them leaves the lander's
    trajectory bit-identical (tests/test_envs.py checks it).
    """

    def step(self, action):
        result = self.env.step(action)
        self.env.unwrapped._clean_particles(True)
        return result


def make_env(env_id: str, seed: int | None = None, render_mode: str | None = None) -> gym.Env:
    """gym.make with a one-line error for unknown ids and discrete action spaces; seeds the action space."""
    spec = gym.envs.registry.get(env_id)
    if spec is not None and str(spec.entry_point).startswith("gym.envs.mujoco"):
        if render_mode == "rgb_array" and not os.environ.get("DISPLAY"):
            os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo renders off-screen through EGL without a display
        _quiet_mujoco()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            env = gym.make(env_id, render_mode=render_mode, disable_env_checker=True)
    except gym.error.Error as e:
        raise UsageError(f"unknown environment id {env_id!r} ({e})") from None
    except Exception as e:  # a registered env whose dependency is missing (e.g. mujoco, Box2D)
        raise UsageError(f"cannot create environment {env_id!r}: {type(e).__name__}: {e}") from None
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise UsageError(f"{env_id} has a {type(env.action_space).__name__} action space; "
                         "these agents need continuous (Box) actions")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        raise UsageError(f"{env_id} needs a flat Box observation space, got {env.observation_space}")
    if render_mode is None and hasattr(env.unwrapped, "_clean_particles"):
        env = NoParticles(env)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def _quiet_mujoco() -> None:
    """gym 0.26.2's MuJoCo models use an attribute MuJoCo 3 deprecates: drop that one warning (every make_env
    would print it, and write MUJOCO_LOG.TXT); other MuJoCo warnings still print."""
    try:
        import mujoco
    except ImportError:
        return  # gym.make then says that mujoco is missing
    mujoco.set_mju_user_warning(
        lambda message: None if "settotalmass" in message else print(f"MuJoCo: {message}", file=sys.stderr))


def agent_sizes(env_id: str, env: gym.Env, algorithm: str, **network) -> dict:
    """What a saved agent must match: the algorithm that wrote it ("ddpg", "sac"), env id, observation and action
    sizes, and the network's shape (saved as agent.json)."""
    return dict(algorithm=algorithm, env=env_id, input_dims=int(env.observation_space.shape[0]),
                n_actions=int(env.action_space.shape[0]), **network)

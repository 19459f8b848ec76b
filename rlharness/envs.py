"""Environments: gym.make with the lecture's env names, one-line errors, MuJoCo rendered off-screen.

Which library runs: gymnasium 1.x, gym's maintained continuation and the default install (requirements.txt), or
the lecture's gym 0.26.2 (requirements-gym.txt). gymnasium runs whenever it is installed; the environment variable
RLHARNESS_GYM=gym (or =gymnasium) chooses when both are (Colab ships an old gym beside gymnasium). Either is
imported as `gym`, the lecture's spelling.
"""
import contextlib
import io
import os
import sys

import numpy as np

from rlharness.errors import UsageError

CHOICES = ("gymnasium", "gym")
# The lecture's env names and their names in the other library: the same task, reward and engine constants
# (README, "Differences from the lecture"). Each library runs the name it has; the run keeps the name asked for
# (file names, agent.json), and a checkpoint written under one name loads under the other.
SAME_ENV = {"gymnasium": {"LunarLanderContinuous-v2": "LunarLanderContinuous-v3", "HalfCheetah-v4": "HalfCheetah-v5"},
            "gym": {"LunarLanderContinuous-v3": "LunarLanderContinuous-v2", "HalfCheetah-v5": "HalfCheetah-v4"}}


def _import_gym():
    """The library RLHARNESS_GYM asks for, else gymnasium if installed, else gym; a one-line exit if it cannot run."""
    asked = os.environ.get("RLHARNESS_GYM", "")
    if asked not in ("", *CHOICES):
        raise SystemExit(f"error: RLHARNESS_GYM={asked!r}: expected gymnasium or gym")
    for name in (asked,) if asked else CHOICES:
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # gym 0.26.2 prints an "unmaintained" notice on import
                library = __import__(name)
        except ImportError:
            continue
        major, minor = (int(part) for part in library.__version__.split(".")[:2])
        if name == "gymnasium" and major < 1:
            raise SystemExit(f"error: gymnasium {library.__version__} is too old: these agents need gymnasium 1.x "
                             "(pip install -r requirements.txt)")
        if name == "gym" and (major, minor) != (0, 26):
            raise SystemExit(f"error: gym {library.__version__} cannot run these agents: they need gymnasium 1.x "
                             "(pip install -r requirements.txt) or the lecture's gym 0.26.2 (requirements-gym.txt)")
        if name == "gym" and int(np.__version__.split(".")[0]) >= 2:
            raise SystemExit(f"error: gym 0.26.2 needs numpy 1, and numpy {np.__version__} is installed: use "
                             "gymnasium (pip install -r requirements.txt) or a venv of requirements-gym.txt")
        return library
    missing = f"RLHARNESS_GYM={asked}, but {asked} is not" if asked else "neither gymnasium nor gym is"
    raise SystemExit(f"error: {missing} installed (pip install -r requirements.txt)")


gym = _import_gym()
LIBRARY = gym.__name__  # "gymnasium" or "gym"


def runs_as(env_id: str) -> str:
    """The id this library runs for `env_id`: LunarLanderContinuous-v2 is gymnasium's -v3 (and -v3 gym's -v2)."""
    return SAME_ENV[LIBRARY].get(env_id, env_id)


def env_note(env_id: str) -> str | None:
    """The one line a run prints when it runs `env_id` under another name, else None."""
    if runs_as(env_id) == env_id:
        return None
    return (f"{env_id} runs as {LIBRARY} {gym.__version__}'s {runs_as(env_id)}, the same task "
            "(README, \"Differences from the lecture\")")


class NoParticles(gym.Wrapper):
    """Frees LunarLander's exhaust particles after every step when nothing is rendered (gym 0.26.2 only).

    gym 0.26.2 only frees them while rendering, so a long hovering episode piles up Box2D bodies and the env
    slows down (29.8x in a 1000-step hovering episode: benchmarks/results/env_speed.md). Particles are
    decoration: they collide with the ground only, never the lander, so destroying them leaves the lander's
    trajectory bit-identical (tests/test_envs.py checks it). gymnasium's -v3 creates none unless it renders.
    """

    def step(self, action):
        result = self.env.step(action)
        self.env.unwrapped._clean_particles(True)
        return result


def make_env(env_id: str, seed: int | None = None, render_mode: str | None = None):
    """gym.make with a one-line error for unknown ids and discrete action spaces; seeds the action space."""
    name = runs_as(env_id)
    spec = gym.envs.registry.get(name)
    if spec is not None and str(spec.entry_point).startswith(f"{LIBRARY}.envs.mujoco"):
        if render_mode == "rgb_array" and not os.environ.get("DISPLAY"):
            os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo renders off-screen through EGL without a display
        _quiet_mujoco()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            env = gym.make(name, render_mode=render_mode, disable_env_checker=True)
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
    if LIBRARY == "gym" and render_mode is None and hasattr(env.unwrapped, "_clean_particles"):
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


def agent_sizes(env_id: str, env, algorithm: str, **network) -> dict:
    """What a saved agent must match: the algorithm that wrote it ("ddpg", "sac"), env id, observation and action
    sizes, and the network's shape (saved as agent.json)."""
    return dict(algorithm=algorithm, env=env_id, input_dims=int(env.observation_space.shape[0]),
                n_actions=int(env.action_space.shape[0]), **network)

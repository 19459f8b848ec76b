"""Exploration noise for DDPG: the lecture's "a = mu(s|theta_mu) + N", with N an Ornstein-Uhlenbeck process.

The lecture's code uses OU noise (temporally correlated, as in the DDPG paper); the slide also allows plain
Gaussian noise N(0, sigma); NoNoise (N = 0) switches exploration noise off, to test the lecture's claim that
DDPG needs it. All return noise in units of the *normalised* action in [-1, 1]; the Agent scales
it by the action space's half-range.
"""
import numpy as np


class OUActionNoise:
    """x_{t+1} = x_t + theta (mu - x_t) dt + sigma sqrt(dt) N(0, 1); long-run std sigma / sqrt(2 theta - theta^2 dt)."""

    def __init__(self, mu: np.ndarray, sigma: float = 0.15, theta: float = 0.2, dt: float = 1e-2,
                 x0: np.ndarray | None = None, seed: int | None = None) -> None:
        self.mu = np.asarray(mu, dtype=np.float64)
        self.sigma, self.theta, self.dt, self.x0 = sigma, theta, dt, x0
        self.rng = np.random.default_rng(seed)
        self.reset()

    def __call__(self) -> np.ndarray:
        # dx = theta (mu - x) dt + sigma sqrt(dt) dW   (Euler-Maruyama step of the OU process)
        x = (self.x_prev + self.theta * (self.mu - self.x_prev) * self.dt
             + self.sigma * np.sqrt(self.dt) * self.rng.standard_normal(self.mu.shape))
        self.x_prev = x
        return x

    def reset(self) -> None:
        """Restart the process at x0 (zeros by default); the lecture calls this at every episode start."""
        self.x_prev = np.zeros_like(self.mu) if self.x0 is None else np.asarray(self.x0, dtype=np.float64)

    def state_dict(self) -> dict:
        """The process value x_prev and the generator's state (for resuming a run exactly)."""
        return {"x_prev": self.x_prev.tolist(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.x_prev = np.asarray(state["x_prev"], dtype=np.float64)
        self.rng.bit_generator.state = state["rng"]

    def __repr__(self) -> str:
        return f"OUActionNoise(mu={self.mu}, sigma={self.sigma}, theta={self.theta}, dt={self.dt})"


class GaussianActionNoise:
    """N(mu, sigma^2), independent at every step (the slide's plain exploration noise)."""

    def __init__(self, mu: np.ndarray, sigma: float = 0.1, seed: int | None = None) -> None:
        self.mu = np.asarray(mu, dtype=np.float64)
        self.sigma = sigma
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> np.ndarray:
        return self.mu + self.sigma * self.rng.standard_normal(self.mu.shape)

    def reset(self) -> None:
        """Nothing to reset: each draw is independent."""

    def state_dict(self) -> dict:
        """The generator's state (for resuming a run exactly)."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def __repr__(self) -> str:
        return f"GaussianActionNoise(mu={self.mu}, sigma={self.sigma})"


class NoNoise:
    """N = 0: the agent acts with mu(s) alone. Exploration then comes only from the warm-up's uniform random
    actions (--learning-starts) and from mu changing as it learns."""

    def __init__(self, mu: np.ndarray) -> None:
        self.mu = np.zeros_like(np.asarray(mu, dtype=np.float64))

    def __call__(self) -> np.ndarray:
        return self.mu

    def reset(self) -> None:
        """Nothing to reset."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to load."""

    def __repr__(self) -> str:
        return "NoNoise()"

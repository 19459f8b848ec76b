"""SAC's networks (lecture, "SAC: networks"): the stochastic actor pi(a|s) and a critic Q(s, a).

The actor is a tanh-squashed Gaussian: u ~ N(mu(s), sigma(s)^2), a = tanh(u) scaled to the action bounds.
Its log-probability needs the change-of-variables correction for tanh (SAC paper, Appendix C, Eq. 21).
ReLUs work in place (a Linear layer's backward needs its input, not its output), which saves writing a
new [batch, hidden] tensor for each.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -20.0, 2.0


def _input_layer(in_dims: int, out_dims: int) -> nn.Linear:
    """A layer fed the raw state or action, with its weight W [out, in] stored column-major: the same values and
    shape, but with so few inputs (2 to 23 here) MKL computes this layer's gradients 2 to 4x faster in that
    layout (see docs/performance.md)."""
    layer = nn.Linear(in_dims, out_dims)
    layer.weight = nn.Parameter(layer.weight.detach().T.contiguous().T)
    return layer


class ActorNetwork(nn.Module):
    """pi(a|s): a Gaussian head (mean mu, log-std clamped to [-20, 2]) over the pre-squash action u."""

    def __init__(self, input_dims: int, n_actions: int, action_low: np.ndarray, action_high: np.ndarray,
                 fc1_dims: int = 256, fc2_dims: int = 256) -> None:
        super().__init__()
        self.fc1 = _input_layer(input_dims, fc1_dims)
        self.fc2 = nn.Linear(fc1_dims, fc2_dims)
        self.mu = nn.Linear(fc2_dims, n_actions)
        self.log_sigma = nn.Linear(fc2_dims, n_actions)
        low = torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.as_tensor(action_high, dtype=torch.float32)
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)
        # a = scale * tanh(u) + bias multiplies the density by 1 / prod(scale): a constant in log pi
        self.register_buffer("log_scale_sum", torch.log(self.action_scale).sum())

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clamped log-std of the Gaussian over u."""
        x = F.relu(self.fc1(state), inplace=True)
        x = F.relu(self.fc2(x), inplace=True)
        log_sigma = torch.clamp(self.log_sigma(x), LOG_SIGMA_MIN, LOG_SIGMA_MAX)
        return self.mu(x), log_sigma

    def sample_normal(self, state: torch.Tensor, reparameterize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """a ~ pi(.|s) and log pi(a|s), shape (B, n_actions) and (B,).

        reparameterize=True draws u = mu + sigma * eps with eps ~ N(0, I), so gradients reach the actor
        through the sample (the lecture's reparameterization trick); False cuts them.
        """
        mu, log_sigma = self(state)
        sigma = log_sigma.exp()
        eps = torch.randn_like(mu)
        u = mu + sigma * eps if reparameterize else (mu + sigma * eps).detach()
        # log N(u; mu, sigma), summed over the action dimensions
        log_normal = (-0.5 * ((u - mu) / sigma) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
        # log pi(a|s) = log N(u; mu, sigma) - sum log(1 - tanh(u)^2),  log(1 - tanh^2 u) = 2 (log 2 - u - softplus(-2u))
        log_pi = log_normal - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(dim=-1) - self.log_scale_sum
        action = torch.tanh(u) * self.action_scale + self.action_bias
        return action, log_pi

    def deterministic(self, state: torch.Tensor) -> torch.Tensor:
        """The evaluation action: tanh(mu(s)), scaled to the bounds."""
        mu, _ = self(state)
        return torch.tanh(mu) * self.action_scale + self.action_bias


class CriticNetwork(nn.Module):
    """Q(s, a): state and action concatenated, two hidden layers, one scalar out; returns shape (B, 1)."""

    def __init__(self, input_dims: int, n_actions: int, fc1_dims: int = 256, fc2_dims: int = 256) -> None:
        super().__init__()
        self.fc1 = _input_layer(input_dims + n_actions, fc1_dims)
        self.fc2 = nn.Linear(fc1_dims, fc2_dims)
        self.q = nn.Linear(fc2_dims, 1)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(torch.cat([state, action], dim=-1)), inplace=True)
        x = F.relu(self.fc2(x), inplace=True)
        return self.q(x)

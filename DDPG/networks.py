"""DDPG's two networks: the actor mu(s|theta_mu) and the critic Q(s, a|theta_Q) (lecture, "DDPG: networks").

As in the DDPG paper and the lecture's code, the action enters the critic at its second layer, the output
layers start near zero (uniform +-3e-3), and LayerNorm after each hidden layer is an option (the lecture's
code uses it; off by default here, see docs/differences.md).
ReLUs work in place (a Linear layer's backward needs its input, not its output), which saves writing a
new [batch, hidden] tensor for each.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _input_layer(in_dims: int, out_dims: int) -> nn.Linear:
    """A layer fed the raw state or action, with its weight W [out, in] stored column-major: the same values and
    shape, but with so few inputs (2 to 23 here) MKL computes this layer's gradients 2 to 4x faster in that
    layout (see docs/performance.md)."""
    layer = nn.Linear(in_dims, out_dims)
    layer.weight = nn.Parameter(layer.weight.detach().T.contiguous().T)
    return layer


def _final_layer(in_dims: int, out_dims: int) -> nn.Linear:
    """Output layer initialised in +-3e-3, so the first policies and Q-values are near zero (DDPG paper)."""
    layer = nn.Linear(in_dims, out_dims)
    nn.init.uniform_(layer.weight, -3e-3, 3e-3)
    nn.init.uniform_(layer.bias, -3e-3, 3e-3)
    return layer


def _norm(dims: int, layer_norm: bool) -> nn.Module:
    return nn.LayerNorm(dims) if layer_norm else nn.Identity()


class ActorNetwork(nn.Module):
    """mu(s|theta_mu) = low + (tanh(f(s)) + 1) (high - low) / 2: a deterministic action inside the bounds."""

    def __init__(self, input_dims: int, n_actions: int, action_low: np.ndarray, action_high: np.ndarray,
                 fc1_dims: int = 256, fc2_dims: int = 256, layer_norm: bool = False) -> None:
        super().__init__()
        self.fc1 = _input_layer(input_dims, fc1_dims)
        self.bn1 = _norm(fc1_dims, layer_norm)
        self.fc2 = nn.Linear(fc1_dims, fc2_dims)
        self.bn2 = _norm(fc2_dims, layer_norm)
        self.mu = _final_layer(fc2_dims, n_actions)
        low = torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.as_tensor(action_high, dtype=torch.float32)
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.fc1(state)), inplace=True)
        x = F.relu(self.bn2(self.fc2(x)), inplace=True)
        return torch.tanh(self.mu(x)) * self.action_scale + self.action_bias


class CriticNetwork(nn.Module):
    """Q(s, a|theta_Q): state through fc1, action joins at fc2, one scalar out; returns shape (B, 1)."""

    def __init__(self, input_dims: int, n_actions: int, fc1_dims: int = 256, fc2_dims: int = 256,
                 layer_norm: bool = False) -> None:
        super().__init__()
        self.fc1 = _input_layer(input_dims, fc1_dims)
        self.bn1 = _norm(fc1_dims, layer_norm)
        self.fc2 = nn.Linear(fc1_dims, fc2_dims)
        self.bn2 = _norm(fc2_dims, layer_norm)
        self.action_value = _input_layer(n_actions, fc2_dims)
        self.q = _final_layer(fc2_dims, 1)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        state_value = F.relu(self.bn1(self.fc1(state)), inplace=True)
        state_value = self.bn2(self.fc2(state_value))
        state_action_value = F.relu(state_value + self.action_value(action), inplace=True)
        return self.q(state_action_value)

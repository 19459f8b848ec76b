"""The DDPG agent: the lecture's algorithm box (Lillicrap et al. 2016, "Continuous control with deep RL", Alg. 1).

`learn()` is the box's inner loop, one commented line per equation. Everything else (acting, memory,
checkpoints) is plumbing around it. `target_networks=False` computes the target y with the online Q and mu,
switching off the lecture's claim that slowly moving target networks keep the critic's target stable.
"""
import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rlharness.checkpoints import load_state_dicts, save_state_dicts
from rlharness.gpu import DeviceReplayBuffer

from buffer import ReplayBuffer
from networks import ActorNetwork, CriticNetwork


class Agent:
    """DDPG: actor mu, critic Q, their target copies mu' and Q', a replay buffer R and exploration noise N.

    The keyword defaults are common modern values; main_ddpg.py's defaults are the values tuned for LunarLander.
    """

    def __init__(self, input_dims: int, n_actions: int, action_low: np.ndarray, action_high: np.ndarray,
                 lr_actor: float = 1e-3, lr_critic: float = 1e-3, tau: float = 0.005, gamma: float = 0.99,
                 max_size: int = 1_000_000, fc1_dims: int = 256, fc2_dims: int = 256, batch_size: int = 256,
                 layer_norm: bool = False, noise=None, critic_weight_decay: float = 0.0, target_networks: bool = True,
                 device: torch.device | str = "cpu", seed: int | None = None) -> None:
        self.input_dims, self.n_actions = input_dims, n_actions
        self.gamma, self.tau, self.batch_size, self.target_networks = gamma, tau, batch_size, target_networks
        self.device = torch.device(device)
        self.action_low = np.asarray(action_low, dtype=np.float32)
        self.action_high = np.asarray(action_high, dtype=np.float32)
        self.noise = noise  # in units of the normalised action; scaled by the half-range below
        self.noise_scale = (self.action_high - self.action_low) / 2
        on_gpu = self.device.type == "cuda"  # then R lives on the GPU and learn() can run as a CUDA graph
        buffer = DeviceReplayBuffer if on_gpu else ReplayBuffer
        self.memory = buffer(max_size, input_dims, n_actions, seed=seed, device=self.device)

        # Randomly initialise critic Q(s, a|theta_Q) and actor mu(s|theta_mu)
        self.mu = ActorNetwork(input_dims, n_actions, action_low, action_high, fc1_dims, fc2_dims,
                               layer_norm).to(self.device)
        self.Q = CriticNetwork(input_dims, n_actions, fc1_dims, fc2_dims, layer_norm).to(self.device)
        # Initialise target networks Q' and mu' with weights theta_Q' <- theta_Q, theta_mu' <- theta_mu
        self.mu_target = copy.deepcopy(self.mu).requires_grad_(False)
        self.Q_target = copy.deepcopy(self.Q).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.mu.parameters(), lr=lr_actor, fused=True,
                                                capturable=on_gpu)
        # critic_weight_decay adds an L2 penalty on theta_Q to the critic's gradient (the DDPG paper and the
        # lecture's code use 0.01; 0 here, see docs/differences.md)
        self.critic_optimizer = torch.optim.Adam(self.Q.parameters(), lr=lr_critic, weight_decay=critic_weight_decay,
                                                 fused=True, capturable=on_gpu)
        # parameter lists for the soft update (buffers such as the action scale never change)
        self._online = list(self.mu.parameters()) + list(self.Q.parameters())
        self._target = list(self.mu_target.parameters()) + list(self.Q_target.parameters())

    def choose_action(self, observation: np.ndarray, evaluate: bool = False) -> np.ndarray:
        """a = mu(s|theta_mu) + N, clipped to the action bounds; evaluate=True gives mu(s) alone."""
        state = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            mu = self.mu(state).cpu().numpy()
        if evaluate or self.noise is None:
            return mu
        return np.clip(mu + self.noise_scale * self.noise(), self.action_low, self.action_high)

    def remember(self, state: np.ndarray, action: np.ndarray, reward: float, state_: np.ndarray,
                 done: bool) -> None:
        """Store transition (s, a, r, s', d) in R; d is *terminated*, never a time-limit truncation."""
        self.memory.store_transition(state, action, reward, state_, done)

    def learn(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """One DDPG update from a minibatch of R; returns (critic loss, actor loss), or None while R < batch."""
        if len(self.memory) < self.batch_size:
            return None
        # Sample a random minibatch of N transitions (s_i, a_i, r_i, s_{i+1}) from R
        s, a, r, s_, done = self.memory.sample_buffer(self.batch_size)

        with torch.no_grad():
            # Q', mu': the target networks (--no-target-networks: the online Q and mu themselves, a target that moves)
            Q_, mu_ = (self.Q_target, self.mu_target) if self.target_networks else (self.Q, self.mu)
            # y_i = r_i + gamma Q'(s_{i+1}, mu'(s_{i+1}))   [the (1 - d) mask is ours, as in the lecture's code]
            y = r + self.gamma * (1 - done) * Q_(s_, mu_(s_)).view(-1)

        # L = 1/N sum_i (y_i - Q(s_i, a_i|theta_Q))^2   (update the critic by minimising L)
        critic_loss = F.mse_loss(self.Q(s, a).view(-1), y)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # grad J ~ 1/N sum_i grad_a Q(s, a)|_{a=mu(s_i)} grad_theta_mu mu(s_i)   (ascend Q by descending -Q)
        self.Q.requires_grad_(False)  # the actor step needs dQ/da, not dQ/dtheta_Q: skip those gradients
        actor_loss = -self.Q(s, self.mu(s)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        self.Q.requires_grad_(True)

        # theta' <- tau theta + (1 - tau) theta'   (for both Q' and mu'; without target networks: none)
        if self.target_networks:
            self.update_network_parameters()
        return critic_loss.detach(), actor_loss.detach()

    @torch.no_grad()
    def update_network_parameters(self, tau: float | None = None) -> None:
        """Soft target update theta' <- tau theta + (1 - tau) theta' (lerp: theta' + tau (theta - theta'))."""
        torch._foreach_lerp_(self._target, self._online, self.tau if tau is None else tau)

    # -----------------------------------------------------------------------------------------------------
    # What the training run records and restores (the shared machinery asks every agent the same)
    # -----------------------------------------------------------------------------------------------------
    critic_labels = {"Q": "Q(s, mu(s))"}  # the critic record's legend

    @torch.no_grad()
    def critic_estimates(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """The critic's value of the policy at each state, Q(s, mu(s)) (for the maximization-bias plot)."""
        return {"Q": self.Q(states, self.mu(states)).view(-1)}

    def diagnostics(self, states: torch.Tensor) -> dict[str, dict[str, float]]:
        """Records of DDPG's own beside the critic's: none."""
        return {}

    def rng_state(self) -> dict:
        """The generators the agent draws from: the buffer's sampler and the noise process N."""
        state = {"buffer": self.memory.rng_state()}
        if self.noise is not None:
            state["noise"] = self.noise.state_dict()
        return state

    def set_rng_state(self, state: dict) -> None:
        """Put back what rng_state() returned (for --resume)."""
        self.memory.set_rng_state(state["buffer"])
        if "noise" in state and self.noise is not None:
            self.noise.load_state_dict(state["noise"])

    # -----------------------------------------------------------------------------------------------------
    # Checkpoints: one state_dict per network, as in the lecture, plus the optimisers
    # -----------------------------------------------------------------------------------------------------
    def parts(self) -> dict[str, torch.nn.Module | torch.optim.Optimizer]:
        """Every network and optimiser, by the name of its checkpoint file."""
        return {"actor": self.mu, "critic": self.Q, "target_actor": self.mu_target,
                "target_critic": self.Q_target, "actor_optimizer": self.actor_optimizer,
                "critic_optimizer": self.critic_optimizer}

    def save_models(self, chkpt_dir: str | Path) -> None:
        """Write each network's and optimiser's state_dict to chkpt_dir/<name>.pt, each file atomically."""
        save_state_dicts(self.parts(), chkpt_dir)

    def load_models(self, chkpt_dir: str | Path) -> None:
        """Load what save_models wrote; a missing, corrupt or mismatched file is a UsageError."""
        load_state_dicts(self.parts(), chkpt_dir, self.device)

"""The SAC agent: the lecture's algorithm box (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications").

Twin critics Q1, Q2 with target copies Q1', Q2', a tanh-squashed Gaussian policy pi, and the entropy
temperature alpha. `learn()` is the box's "for however many updates" body, one commented line per equation.
Automatic entropy tuning (learning log alpha towards a target entropy) is an addition to the slides, from the
same paper; `alpha=<number>` fixes alpha as the slides do.

Two of the lecture's claims can be switched off to be tested (benchmarks/claims.py): `n_critics=1` uses Q1 alone
where the box takes min_i Q_i (no double-Q trick against the maximization bias), `target_networks=False` computes
the target y with the online critics (no slowly moving target); `alpha=0` removes the entropy bonus.
"""
import copy
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rlharness.checkpoints import load_state_dicts, save_state_dicts
from rlharness.gpu import DeviceReplayBuffer

from buffer import ReplayBuffer
from networks import ActorNetwork, CriticNetwork


class Agent:
    """SAC: policy pi, twin critics Q1, Q2, target critics Q1', Q2', temperature alpha, replay buffer D.

    The keyword defaults are the paper's; main_sac.py's defaults are the values tuned for LunarLander.
    """

    def __init__(self, input_dims: int, n_actions: int, action_low: np.ndarray, action_high: np.ndarray,
                 lr_actor: float = 3e-4, lr_critic: float = 3e-4, lr_alpha: float = 3e-4,
                 alpha: float | None = None, target_entropy: float | None = None, tau: float = 0.005,
                 gamma: float = 0.99, max_size: int = 1_000_000,
                 fc1_dims: int = 256, fc2_dims: int = 256, batch_size: int = 256, n_critics: int = 2,
                 target_networks: bool = True, device: torch.device | str = "cpu", seed: int | None = None) -> None:
        if n_critics not in (1, 2):
            raise ValueError(f"n_critics is 1 or 2, not {n_critics}")
        self.input_dims, self.n_actions = input_dims, n_actions
        self.gamma, self.tau, self.batch_size = gamma, tau, batch_size
        self.device = torch.device(device)
        on_gpu = self.device.type == "cuda"  # then D lives on the GPU and learn() can run as a CUDA graph
        buffer = DeviceReplayBuffer if on_gpu else ReplayBuffer
        self.memory = buffer(max_size, input_dims, n_actions, seed=seed, device=self.device)

        # Initialise policy parameters theta, Q-function parameters phi_1, phi_2, empty replay buffer D
        self.pi = ActorNetwork(input_dims, n_actions, action_low, action_high, fc1_dims, fc2_dims).to(self.device)
        self.Q1 = CriticNetwork(input_dims, n_actions, fc1_dims, fc2_dims).to(self.device)
        self.Q2 = CriticNetwork(input_dims, n_actions, fc1_dims, fc2_dims).to(self.device)
        # Set target parameters equal to main parameters phi'_1 <- phi_1, phi'_2 <- phi_2
        self.Q1_target = copy.deepcopy(self.Q1).requires_grad_(False)
        self.Q2_target = copy.deepcopy(self.Q2).requires_grad_(False)
        self.n_critics, self.target_networks = n_critics, target_networks
        self.actor_optimizer = torch.optim.Adam(self.pi.parameters(), lr=lr_actor, fused=True,
                                                capturable=on_gpu)
        self.critic_optimizer = torch.optim.Adam([*self.Q1.parameters(), *self.Q2.parameters()], lr=lr_critic,
                                                 fused=True, capturable=on_gpu)

        # alpha = exp(log alpha): learned towards the target entropy -|A| (an addition), or fixed
        self.auto_alpha = alpha is None
        self.temperature = torch.nn.ParameterDict(  # a module, so log alpha saves and loads like a network
            {"log_alpha": torch.zeros(1, device=self.device)}).requires_grad_(self.auto_alpha)
        self.log_alpha = self.temperature["log_alpha"]
        if not self.auto_alpha:  # alpha = 0: no entropy bonus (log alpha = -inf, exp gives exactly 0)
            with torch.no_grad():
                self.log_alpha.fill_(math.log(alpha) if alpha > 0 else -math.inf)
        self.target_entropy = -float(n_actions) if target_entropy is None else float(target_entropy)  # default -|A|
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=lr_alpha, fused=True, capturable=on_gpu)

        self._online = [p for Q in self.critics for p in Q.parameters()]
        self._target = [p for Q in self.targets for p in Q.parameters()]

    @property
    def critics(self) -> list[torch.nn.Module]:
        """The critics the box's min_i runs over: Q1 and Q2 (the double-Q trick), or Q1 alone with n_critics=1."""
        return [self.Q1, self.Q2][:self.n_critics]

    @property
    def targets(self) -> list[torch.nn.Module]:
        """Their target copies Q'_i."""
        return [self.Q1_target, self.Q2_target][:self.n_critics]

    @staticmethod
    def min_q(critics: list[torch.nn.Module], s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """min_i Q_i(s, a) over `critics` (the twin minimum; with one critic, its value), one per row."""
        q = critics[0](s, a)
        for Q in critics[1:]:
            q = torch.min(q, Q(s, a))
        return q.view(-1)

    @property
    def alpha(self) -> torch.Tensor:
        """The temperature alpha = exp(log alpha), as a constant (no gradient)."""
        return self.log_alpha.detach().exp()

    def choose_action(self, observation: np.ndarray, evaluate: bool = False) -> np.ndarray:
        """a ~ pi(.|s) while training; the deterministic tanh(mu(s)) when evaluating."""
        state = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            if evaluate:
                action = self.pi.deterministic(state)
            else:
                action, _ = self.pi.sample_normal(state, reparameterize=False)
        return action.cpu().numpy()

    def remember(self, state: np.ndarray, action: np.ndarray, reward: float, state_: np.ndarray,
                 done: bool) -> None:
        """Store (s, a, r, s', d) in D; d is *terminated*, never a time-limit truncation."""
        self.memory.store_transition(state, action, reward, state_, done)

    def learn(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """One SAC update from a minibatch B of D; returns (critic, actor, alpha) losses, or None while D < B."""
        if len(self.memory) < self.batch_size:
            return None
        # Randomly sample a batch of transitions B = {(s, a, r, s', d)} from D
        s, a, r, s_, done = self.memory.sample_buffer(self.batch_size)
        alpha = self.alpha

        with torch.no_grad():
            # a' ~ pi(.|s')   (a fresh sample from the current policy, not from the buffer)
            a_, log_pi_ = self.pi.sample_normal(s_)
            # Q'_i: the target critics (--no-target-networks: the online Q_i themselves, a target that moves)
            targets = self.targets if self.target_networks else self.critics
            # y = r + gamma (1 - d) (min_i Q'_i(s', a') - alpha log pi(a'|s'))   (--critics 1: Q'_1 alone)
            y = r + self.gamma * (1 - done) * (self.min_q(targets, s_, a_) - alpha * log_pi_)

        # L(phi_i) = 1/|B| sum (Q_i(s, a) - y)^2, for i = 1, 2   (summed; --critics 1: i = 1)
        critic_loss = sum(F.mse_loss(Q(s, a).view(-1), y) for Q in self.critics)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # a~ = tanh(mu(s) + sigma(s) eps), eps ~ N(0, I)   (reparameterization trick: gradients flow through a~)
        a_tilde, log_pi = self.pi.sample_normal(s, reparameterize=True)
        self.Q1.requires_grad_(False)  # the policy step needs dQ/da~, not dQ/dphi: skip those gradients
        self.Q2.requires_grad_(False)
        # L(theta) = 1/|B| sum (alpha log pi(a~|s) - min_i Q_i(s, a~))
        actor_loss = (alpha * log_pi - self.min_q(self.critics, s, a_tilde)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        self.Q1.requires_grad_(True)
        self.Q2.requires_grad_(True)

        # J(alpha) = 1/|B| sum -alpha (log pi(a~|s) + target entropy)   [automatic tuning: an addition to the box]
        alpha_loss = -(self.log_alpha.exp() * (log_pi.detach() + self.target_entropy)).mean()
        if self.auto_alpha:
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_optimizer.step()

        # phi'_i <- tau phi_i + (1 - tau) phi'_i   (the slide's rho is 1 - tau; without target networks: none)
        if self.target_networks:
            self.update_network_parameters()
        return critic_loss.detach(), actor_loss.detach(), alpha_loss.detach()

    @torch.no_grad()
    def update_network_parameters(self, tau: float | None = None) -> None:
        """Polyak target update phi'_i <- tau phi_i + (1 - tau) phi'_i (lerp: phi' + tau (phi - phi'))."""
        torch._foreach_lerp_(self._target, self._online, self.tau if tau is None else tau)

    # -----------------------------------------------------------------------------------------------------
    # What the training run records and restores (the shared machinery asks every agent the same)
    # -----------------------------------------------------------------------------------------------------
    critic_labels = {"min_Q": "min(Q1, Q2)(s, a~)", "Q1": "Q1(s, a~)", "Q2": "Q2(s, a~)"}  # the record's legend

    @torch.no_grad()
    def critic_estimates(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each critic's and the twin minimum's value at (s, a~), a~ ~ pi(.|s) (for the maximization-bias plot);
        with one critic min_Q is Q1's (Q2 is not trained then, and left out)."""
        a_tilde, _ = self.pi.sample_normal(states)
        q = {f"Q{i + 1}": Q(states, a_tilde).view(-1) for i, Q in enumerate(self.critics)}
        return {"min_Q": torch.stack(list(q.values())).min(dim=0).values, **q}

    @torch.no_grad()
    def policy_entropy(self, states: torch.Tensor) -> torch.Tensor:
        """H(pi(.|s)) ~ -1/|S| sum log pi(a~|s), a~ ~ pi(.|s): the entropy that automatic alpha steers to -|A|."""
        _, log_pi = self.pi.sample_normal(states)
        return -log_pi.mean()

    def diagnostics(self, states: torch.Tensor) -> dict[str, dict[str, float]]:
        """The temperature alpha and the policy entropy it steers towards the target -|A| (utils.plot_alpha)."""
        return {"alpha": dict(alpha=float(self.alpha), entropy=float(self.policy_entropy(states)),
                              target_entropy=self.target_entropy)}

    def rng_state(self) -> dict:
        """The generator the agent draws from besides torch's: the buffer's sampler."""
        return {"buffer": self.memory.rng_state()}

    def set_rng_state(self, state: dict) -> None:
        """Put back what rng_state() returned (for --resume)."""
        self.memory.set_rng_state(state["buffer"])

    # -----------------------------------------------------------------------------------------------------
    # Checkpoints: one state_dict per network, plus the optimisers and log alpha
    # -----------------------------------------------------------------------------------------------------
    def parts(self) -> dict[str, torch.nn.Module | torch.optim.Optimizer]:
        """Every network and optimiser (log alpha too), by the name of its checkpoint file."""
        return {"actor": self.pi, "critic_1": self.Q1, "critic_2": self.Q2, "target_critic_1": self.Q1_target,
                "target_critic_2": self.Q2_target, "actor_optimizer": self.actor_optimizer,
                "critic_optimizer": self.critic_optimizer, "log_alpha": self.temperature,
                "alpha_optimizer": self.alpha_optimizer}

    def save_models(self, chkpt_dir: str | Path) -> None:
        """Write each network's and optimiser's state_dict (log alpha too) to chkpt_dir/<name>.pt, atomically."""
        save_state_dicts(self.parts(), chkpt_dir)

    def load_models(self, chkpt_dir: str | Path) -> None:
        """Load what save_models wrote; a missing, corrupt or mismatched file is a UsageError."""
        load_state_dicts(self.parts(), chkpt_dir, self.device)

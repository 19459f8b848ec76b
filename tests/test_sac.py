"""SAC/'s own files: the squashed Gaussian's log-probability, networks, each equation of learn(), alpha tuning,
save/load, and what the agent answers the shared machinery (critic_estimates, diagnostics, rng_state)."""
import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from rlharness.errors import UsageError

from conftest import assert_linear_matches_float64


def make_agent(sac, **kw):
    args = dict(input_dims=3, n_actions=2, action_low=np.array([-2.0, 0.0]), action_high=np.array([2.0, 1.0]),
                fc1_dims=32, fc2_dims=16, batch_size=4, max_size=100, seed=0)
    args.update(kw)
    torch.manual_seed(args["seed"])
    return sac.sac_torch.Agent(**args)


def fill(agent, n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        s = rng.normal(size=agent.input_dims)
        agent.remember(s, rng.uniform(0, 1, size=agent.n_actions), float(s.sum()), rng.normal(size=agent.input_dims),
                       False)


def fixed_gaussian(actor, mu, log_sigma):
    """Make the actor's Gaussian head output the given mean and log-std for every state."""
    with torch.no_grad():
        for layer, bias in ((actor.mu, mu), (actor.log_sigma, log_sigma)):
            layer.weight.zero_()
            layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))


# --- networks --------------------------------------------------------------------------------------------
def test_shapes_bounds_and_deterministic_action(sac):
    pi = sac.networks.ActorNetwork(3, 2, np.array([-2.0, 0.0]), np.array([2.0, 1.0]), 32, 16)
    Q = sac.networks.CriticNetwork(3, 2, 32, 16)
    s = torch.randn(9, 3) * 100
    a, log_pi = pi.sample_normal(s)
    assert a.shape == (9, 2) and log_pi.shape == (9,)
    assert torch.all(a[:, 0].abs() <= 2) and torch.all((a[:, 1] >= 0) & (a[:, 1] <= 1))
    assert Q(s, a).shape == (9, 1)
    mu, log_sigma = pi(s)
    assert torch.all(log_sigma >= -20) and torch.all(log_sigma <= 2)
    expected = torch.tanh(mu) * torch.tensor([2.0, 0.5]) + torch.tensor([0.0, 0.5])
    assert torch.allclose(pi.deterministic(s), expected)


def test_log_prob_matches_float64_density_of_the_squashed_action(sac, monkeypatch):
    """log pi(a|s) = log N(u; mu, sigma) - sum log(1 - tanh(u)^2) - sum log(scale), for |u| <= 5."""
    pi = sac.networks.ActorNetwork(3, 2, np.array([-2.0, 0.0]), np.array([2.0, 1.0]), 8, 8)
    mu, log_sigma = np.array([0.3, -0.2]), np.array([math.log(0.5), math.log(2.0)])
    fixed_gaussian(pi, mu, log_sigma)
    u = np.stack([np.linspace(-5, 5, 41), np.linspace(5, -5, 41)], axis=1)  # the pre-squash samples we want
    eps = (u - mu) / np.exp(log_sigma)
    monkeypatch.setattr(sac.networks.torch, "randn_like", lambda x: torch.as_tensor(eps, dtype=torch.float32))
    a, log_pi = pi.sample_normal(torch.zeros(41, 3))
    sigma = np.exp(log_sigma)
    log_normal = -0.5 * ((u - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    scale = np.array([2.0, 0.5])
    reference = (log_normal - np.log(1 - np.tanh(u) ** 2) - np.log(scale)).sum(axis=1)
    assert np.allclose(log_pi.detach().double().numpy(), reference, rtol=1e-5, atol=2e-4)
    assert np.allclose(a.detach().numpy(), np.tanh(u) * scale + np.array([0.0, 0.5]), atol=1e-6)


def test_input_layers_are_column_major_linear_layers_through_learn_and_load(sac, tmp_path):
    """The layers fed the raw state (and action) store W column-major (for MKL's faster gradients, see
    networks.py) and still compute x W^T + b and its gradients (checked against numpy in float64); learning and
    loading keep that layout."""
    agent = make_agent(sac, seed=1)
    fill(agent, 8)
    agent.learn()
    agent.save_models(tmp_path)
    other = make_agent(sac, seed=2)
    other.load_models(tmp_path)
    for net in (agent, other):
        for layer in (net.pi.fc1, net.Q1.fc1, net.Q2.fc1, net.Q1_target.fc1, net.Q2_target.fc1):
            W = layer.weight
            assert W.stride() == (1, W.shape[0]), "column-major: W[i, j] and W[i + 1, j] are neighbours"
            assert_linear_matches_float64(layer)
        assert net.Q1.fc2.weight.is_contiguous()  # the wide layers keep PyTorch's usual layout


def test_log_prob_stays_finite_and_exact_at_u_20(sac, monkeypatch):
    pi = sac.networks.ActorNetwork(3, 1, np.array([-1.0]), np.array([1.0]), 8, 8)
    fixed_gaussian(pi, [0.0], [0.0])
    u = torch.tensor([[20.0], [-20.0]])
    monkeypatch.setattr(sac.networks.torch, "randn_like", lambda x: u.clone())
    _, log_pi = pi.sample_normal(torch.zeros(2, 3))
    # log(1 - tanh^2 u) = log 4 - 2|u| - 2 log(1 + exp(-2|u|)): exact in float64, -38.61 at |u| = 20
    exact = -0.5 * 400 - 0.5 * math.log(2 * math.pi) - (math.log(4) - 40 - 2 * math.log1p(math.exp(-40)))
    assert torch.all(torch.isfinite(log_pi))
    assert np.allclose(log_pi.detach().numpy(), exact, rtol=1e-6)


def test_gradients_reach_the_actor_only_through_the_reparameterized_sample(sac):
    pi = sac.networks.ActorNetwork(3, 2, -np.ones(2), np.ones(2), 16, 16)
    s = torch.randn(5, 3)
    a, _ = pi.sample_normal(s, reparameterize=True)
    a.sum().backward()  # no log pi term: any gradient came through the sample a~ = tanh(mu + sigma eps)
    assert pi.mu.weight.grad.abs().sum() > 0 and pi.log_sigma.weight.grad.abs().sum() > 0
    a, _ = pi.sample_normal(s, reparameterize=False)
    assert not a.requires_grad


# --- learn() ---------------------------------------------------------------------------------------------
class TwinTarget(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, s, a):
        return (self.k * s.sum(dim=1) + a.sum(dim=1)).unsqueeze(1)


def test_target_uses_min_of_twin_targets_and_entropy_bonus(sac, monkeypatch):
    """y = r + gamma (1 - d) (min_i Q'_i(s', a') - alpha log pi(a'|s')), terminal d=1, truncated stored d=0."""
    agent = make_agent(sac, gamma=0.9, batch_size=3, alpha=0.5)
    # Q'_1 = sum s' + sum a',  Q'_2 = -sum s' + sum a'
    agent.Q1_target, agent.Q2_target = TwinTarget(1.0), TwinTarget(-1.0)
    s_ = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0], [-1.0, -2.0, 0.0]])
    batch = (torch.zeros(3, 3), torch.zeros(3, 2), torch.tensor([1.0, -1.0, 2.0]), s_, torch.tensor([0.0, 1.0, 0.0]))
    monkeypatch.setattr(agent.memory, "sample_buffer", lambda n: batch)
    agent.memory.mem_cntr = 3
    a_ = torch.tensor([[0.5, 0.5], [0.0, 1.0], [1.0, 1.0]])
    log_pi_ = torch.tensor([-1.0, 3.0, 2.0])
    real_sample = agent.pi.sample_normal

    def sample(state, reparameterize=True):  # a' ~ pi(.|s') is drawn under no_grad: make it known
        return (a_, log_pi_) if not torch.is_grad_enabled() else real_sample(state, reparameterize)

    monkeypatch.setattr(agent.pi, "sample_normal", sample)
    seen = []
    real_mse = sac.sac_torch.F.mse_loss
    monkeypatch.setattr(sac.sac_torch.F, "mse_loss", lambda p, y: seen.append((p, y)) or real_mse(p, y))
    agent.learn()
    # row 0: min(3 + 1, -3 + 1) = -2;  y = 1 + 0.9 (-2 - 0.5 * -1) = -0.35
    # row 1: terminal: y = r = -1
    # row 2: min(-3 + 2, 3 + 2) = -1;  y = 2 + 0.9 (-1 - 0.5 * 2) = 0.2
    expected = torch.tensor([-0.35, -1.0, 0.2])
    assert len(seen) == 2  # one MSE for each critic, both to the same y
    for pred, y in seen:
        assert pred.shape == (3,) and y.shape == (3,)
        assert torch.allclose(y, expected, atol=1e-6) and not y.requires_grad


def test_critic_loss_falls_and_policy_step_lowers_its_loss(sac, monkeypatch):
    agent = make_agent(sac, batch_size=64, gamma=0.5, lr_actor=1e-3, lr_critic=1e-3)
    fill(agent, 64)
    batch = tuple(torch.as_tensor(m[:64]) for m in (agent.memory.state_memory, agent.memory.action_memory,
                                                    agent.memory.reward_memory, agent.memory.new_state_memory,
                                                    agent.memory.terminal_memory))
    monkeypatch.setattr(agent.memory, "sample_buffer", lambda n: batch)  # the whole buffer, every time
    # plain gradient descent: a small enough step must lower the loss it descends (Adam's momentum need not)
    agent.actor_optimizer = torch.optim.SGD(agent.pi.parameters(), lr=1e-3)
    s = batch[0]

    def policy_loss(pi, alpha, seed):
        """L(theta) with the eps that learn() drew for a~ (its second draw after torch.manual_seed(seed))."""
        torch.manual_seed(seed)
        torch.randn(64, 2)  # the first draw made a' for s'
        a, log_pi = pi.sample_normal(s)
        return (alpha * log_pi - torch.min(agent.Q1(s, a), agent.Q2(s, a)).view(-1)).mean()

    losses = []
    for step in range(200):
        pi_old, alpha = copy.deepcopy(agent.pi), agent.alpha.clone()
        torch.manual_seed(step)
        critic_loss, _, _ = agent.learn()
        losses.append(float(critic_loss))
        with torch.no_grad():  # with the critic as it is after its own step, the new policy scores better
            assert policy_loss(agent.pi, alpha, step) < policy_loss(pi_old, alpha, step)
    assert np.mean(losses[-10:]) < 0.25 * np.mean(losses[:10])


@pytest.mark.parametrize("log_sigma,direction", [(-5.0, +1), (0.0, -1)])
def test_alpha_rises_below_target_entropy_and_falls_above(sac, log_sigma, direction):
    """Entropy of tanh(N(0, e^-5)) is far below -|A| = -1: alpha rises; with sigma = 1 it is above: alpha falls."""
    agent = make_agent(sac, input_dims=3, n_actions=1, action_low=-np.ones(1), action_high=np.ones(1),
                       lr_actor=1e-12, batch_size=32)
    fixed_gaussian(agent.pi, [0.0], [log_sigma])
    fill(agent, 32)
    alpha_before = float(agent.alpha)
    agent.learn()
    assert np.sign(float(agent.alpha) - alpha_before) == direction


def test_target_entropy_sets_where_alpha_turns(sac):
    """The same policy (sigma = 1, entropy about 0.5 with the tanh) against targets -1 (the default -|A|) and +2:
    alpha falls towards the first and rises towards the second."""
    moves = []
    for target in (None, 2.0):
        agent = make_agent(sac, input_dims=3, n_actions=1, action_low=-np.ones(1), action_high=np.ones(1),
                           lr_actor=1e-12, batch_size=32, target_entropy=target)
        assert agent.target_entropy == (-1.0 if target is None else target)
        fixed_gaussian(agent.pi, [0.0], [0.0])
        fill(agent, 32)
        alpha_before = float(agent.alpha)
        agent.learn()
        moves.append(np.sign(float(agent.alpha) - alpha_before))
    assert moves == [-1, 1]


def test_fixed_alpha_stays_fixed(sac):
    agent = make_agent(sac, alpha=0.2)
    fill(agent, 8)
    for _ in range(3):
        agent.learn()
    assert torch.allclose(agent.alpha, torch.tensor([0.2]))


def test_targets_start_as_copies_and_polyak_matches_formula(sac):
    agent = make_agent(sac, tau=0.02)
    online = [*agent.Q1.parameters(), *agent.Q2.parameters()]
    targets = [*agent.Q1_target.parameters(), *agent.Q2_target.parameters()]
    assert all(torch.equal(p, q) and p.data_ptr() != q.data_ptr() for p, q in zip(online, targets))
    with torch.no_grad():
        for p in online:
            p.add_(torch.randn_like(p))
    phi, phi_ = [p.clone() for p in online], [p.clone() for p in targets]
    agent.update_network_parameters()
    for p, p_, new in zip(phi, phi_, targets):
        assert torch.allclose(new, 0.02 * p + 0.98 * p_, atol=1e-6)


def test_save_then_load_gives_identical_actions_and_alpha(sac, tmp_path):
    agent = make_agent(sac, seed=1)
    fill(agent, 8)
    for _ in range(3):
        agent.learn()
    agent.save_models(tmp_path)
    other = make_agent(sac, seed=2)
    obs = np.random.randn(10, 3).astype(np.float32)
    other.load_models(tmp_path)
    assert np.array_equal(agent.choose_action(obs, evaluate=True), other.choose_action(obs, evaluate=True))
    assert torch.equal(agent.alpha, other.alpha) and float(agent.alpha) != 1.0
    with pytest.raises(UsageError, match="does not fit"):
        make_agent(sac, n_actions=3, action_low=-np.ones(3), action_high=np.ones(3)).load_models(tmp_path)


def test_training_actions_are_stochastic_and_in_bounds(sac):
    agent = make_agent(sac)
    actions = np.array([agent.choose_action(np.ones(3)) for _ in range(100)])
    assert actions.shape == (100, 2) and len(np.unique(actions[:, 0])) == 100
    assert np.all(np.abs(actions[:, 0]) <= 2) and np.all((actions[:, 1] >= 0) & (actions[:, 1] <= 1))


# --- what the shared machinery asks the agent --------------------------------------------------------------
def test_critic_estimates_take_the_twin_minimum_and_diagnostics_report_alpha(sac):
    agent = make_agent(sac, alpha=0.3)
    states = torch.randn(6, 3)
    estimates = agent.critic_estimates(states)
    assert set(estimates) == set(agent.critic_labels) == {"min_Q", "Q1", "Q2"}
    assert torch.equal(estimates["min_Q"], torch.min(estimates["Q1"], estimates["Q2"]))
    (name, row), = agent.diagnostics(states).items()
    assert name == "alpha" and set(row) == {"alpha", "entropy", "target_entropy"}
    assert row["alpha"] == pytest.approx(0.3) and row["target_entropy"] == -2.0 and math.isfinite(row["entropy"])


def test_rng_state_round_trip_continues_the_same_samples(sac):
    agent = make_agent(sac)
    fill(agent, 10)
    state = agent.rng_state()
    assert set(state) == {"buffer"}  # torch's generator, which pi samples from, is saved by rlharness.seeding
    expected = agent.memory.sample_buffer(4)[2]
    agent.memory.sample_buffer(4)
    agent.set_rng_state(state)
    assert torch.equal(agent.memory.sample_buffer(4)[2], expected)


class KnownCritic(nn.Module):
    """Q(s, a) = w (k sum s + sum a) with w = 1 a parameter: a known value that a loss can still backpropagate."""

    def __init__(self, k):
        super().__init__()
        self.k, self.w = k, nn.Parameter(torch.ones(1))

    def forward(self, s, a):
        return self.w * (self.k * s.sum(dim=1) + a.sum(dim=1)).unsqueeze(1)


def known_batch(agent, monkeypatch, sac):
    """The hand-computed batch of the twin-target test; returns the (prediction, y) pairs learn()'s MSEs see."""
    s_ = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0], [-1.0, -2.0, 0.0]])
    batch = (torch.zeros(3, 3), torch.zeros(3, 2), torch.tensor([1.0, -1.0, 2.0]), s_, torch.tensor([0.0, 1.0, 0.0]))
    monkeypatch.setattr(agent.memory, "sample_buffer", lambda n: batch)
    agent.memory.mem_cntr = 3
    a_, log_pi_ = torch.tensor([[0.5, 0.5], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([-1.0, 3.0, 2.0])
    real_sample = agent.pi.sample_normal
    monkeypatch.setattr(agent.pi, "sample_normal", lambda state, reparameterize=True: (a_, log_pi_) if not
                        torch.is_grad_enabled() else real_sample(state, reparameterize))
    seen, real_mse = [], sac.sac_torch.F.mse_loss
    monkeypatch.setattr(sac.sac_torch.F, "mse_loss", lambda p, y: seen.append((p, y)) or real_mse(p, y))
    return seen


def test_one_critic_takes_q1_alone_in_the_target_and_the_policy_loss(sac, monkeypatch):
    """--critics 1: y = r + gamma (1 - d) (Q'_1(s', a') - alpha log pi(a'|s')); only Q1 is fitted; L(theta) uses Q1."""
    agent = make_agent(sac, gamma=0.9, batch_size=3, alpha=0.5, n_critics=1)
    agent.Q1_target, agent.Q2_target = TwinTarget(1.0), TwinTarget(-1.0)  # Q'_2 would give the smaller value
    q2 = copy.deepcopy(agent.Q2.state_dict())
    seen = known_batch(agent, monkeypatch, sac)
    _, actor_loss, _ = agent.learn()
    # row 0: Q'_1 = 3 + 1 = 4: y = 1 + 0.9 (4 + 0.5) = 5.05; row 1 terminal: -1; row 2: Q'_1 = -3 + 2 = -1:
    # y = 2 + 0.9 (-1 - 0.5 * 2) = 0.2 (the twin minimum gave -0.35 for row 0)
    assert len(seen) == 1 and torch.allclose(seen[0][1], torch.tensor([5.05, -1.0, 0.2]), atol=1e-6)
    assert all(torch.equal(v, q2[k]) for k, v in agent.Q2.state_dict().items())  # Q2 is not trained

    class Unused(nn.Module):
        def forward(self, s, a):
            raise AssertionError("Q2 or Q'_2 was asked")

    agent.Q2, agent.Q2_target = Unused(), Unused()  # neither the critic loss, y nor L(theta) may ask Q2 or Q'_2
    agent.learn()
    estimates = agent.critic_estimates(torch.zeros(3, 3))
    assert set(estimates) == {"min_Q", "Q1"} and torch.equal(estimates["min_Q"], estimates["Q1"])
    assert torch.isfinite(actor_loss)


def test_without_target_networks_y_uses_the_online_critics_and_nothing_is_polyak_updated(sac, monkeypatch):
    """--no-target-networks: y = r + gamma (1 - d) (min_i Q_i(s', a') - alpha log pi(a'|s')), Q'_i never move."""
    agent = make_agent(sac, gamma=0.9, batch_size=3, alpha=0.5, target_networks=False)
    agent.Q1, agent.Q2 = KnownCritic(1.0), KnownCritic(-1.0)  # the values the twin-target test's targets had
    targets = copy.deepcopy([agent.Q1_target.state_dict(), agent.Q2_target.state_dict()])
    seen = known_batch(agent, monkeypatch, sac)
    agent.learn()
    assert len(seen) == 2 and all(torch.allclose(y, torch.tensor([-0.35, -1.0, 0.2]), atol=1e-6) for _, y in seen)
    for net, before in zip((agent.Q1_target, agent.Q2_target), targets):
        assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_alpha_zero_removes_the_entropy_bonus(sac, monkeypatch):
    """--alpha 0: y = r + gamma (1 - d) min_i Q'_i(s', a') and L(theta) = -min_i Q_i(s, a~)."""
    agent = make_agent(sac, gamma=0.9, batch_size=3, alpha=0.0)
    assert float(agent.alpha) == 0.0 and agent.log_alpha.item() == -math.inf
    agent.Q1_target, agent.Q2_target = TwinTarget(1.0), TwinTarget(-1.0)
    seen = known_batch(agent, monkeypatch, sac)
    _, actor_loss, alpha_loss = agent.learn()
    # row 0: y = 1 + 0.9 * -2 = -0.8; row 1: -1; row 2: y = 2 + 0.9 * -1 = 1.1
    assert all(torch.allclose(y, torch.tensor([-0.8, -1.0, 1.1]), atol=1e-6) for _, y in seen)
    assert torch.isfinite(actor_loss) and float(alpha_loss) == 0.0 and float(agent.alpha) == 0.0

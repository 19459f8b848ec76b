"""DDPG/'s own files: networks, buffer, noise, each equation of learn() on hand-computed values, save/load, and
what the agent answers the shared machinery (critic_estimates, diagnostics, rng_state)."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from rlharness.errors import UsageError

from conftest import assert_linear_matches_float64


def make_agent(ddpg, **kw):
    args = dict(input_dims=3, n_actions=2, action_low=np.array([-2.0, 0.0]), action_high=np.array([2.0, 1.0]),
                fc1_dims=32, fc2_dims=16, batch_size=4, max_size=100, seed=0)
    args.update(kw)
    torch.manual_seed(args["seed"])
    return ddpg.ddpg_torch.Agent(**args)


class Affine(nn.Module):
    """A stand-in network with a known output: Q'(s, a) = sum(s) + 10 sum(a), mu'(s) = (s_0, s_1)."""

    def forward(self, s, a=None):
        if a is None:
            return s[:, :2].clone()
        return (s.sum(dim=1) + 10 * a.sum(dim=1)).unsqueeze(1)


# --- networks --------------------------------------------------------------------------------------------
def test_network_shapes_and_action_bounds(ddpg):
    mu = ddpg.networks.ActorNetwork(3, 2, np.array([-2.0, 0.0]), np.array([2.0, 1.0]), 32, 16)
    Q = ddpg.networks.CriticNetwork(3, 2, 32, 16, layer_norm=True)
    s = torch.randn(7, 3) * 1e3  # huge inputs saturate tanh: the action must still be inside the bounds
    a = mu(s)
    assert a.shape == (7, 2)
    assert torch.all(a[:, 0] >= -2) and torch.all(a[:, 0] <= 2)
    assert torch.all(a[:, 1] >= 0) and torch.all(a[:, 1] <= 1)
    assert Q(s, a).shape == (7, 1)
    # tanh output 0 maps to the middle of the bounds
    with torch.no_grad():
        mu.mu.weight.zero_()
        mu.mu.bias.zero_()
    assert torch.allclose(mu(torch.randn(5, 3)), torch.tensor([0.0, 0.5]).expand(5, 2))


def test_input_layers_are_column_major_linear_layers_through_learn_and_load(ddpg, tmp_path):
    """The layers fed the raw state or action store W column-major (for MKL's faster gradients, see networks.py)
    and still compute x W^T + b and its gradients (checked against numpy in float64); learning and loading keep
    that layout."""
    agent = make_agent(ddpg)
    for _ in range(8):
        agent.remember(np.random.randn(3), np.random.rand(2), 1.0, np.random.randn(3), False)
    agent.learn()
    agent.save_models(tmp_path)
    other = make_agent(ddpg, seed=1)
    other.load_models(tmp_path)
    for net in (agent, other):
        for layer in (net.mu.fc1, net.Q.fc1, net.Q.action_value, net.mu_target.fc1, net.Q_target.action_value):
            W = layer.weight
            assert W.stride() == (1, W.shape[0]), "column-major: W[i, j] and W[i + 1, j] are neighbours"
            assert_linear_matches_float64(layer)
        assert net.Q.fc2.weight.is_contiguous()  # the wide layers keep PyTorch's usual layout


def test_target_networks_start_as_exact_copies(ddpg):
    agent = make_agent(ddpg)
    for net, target in ((agent.mu, agent.mu_target), (agent.Q, agent.Q_target)):
        online, tgt = net.state_dict(), target.state_dict()
        assert online.keys() == tgt.keys()
        assert all(torch.equal(online[k], tgt[k]) for k in online)
        assert all(p.data_ptr() != q.data_ptr() for p, q in zip(net.parameters(), target.parameters()))


def test_soft_update_matches_formula(ddpg):
    agent = make_agent(ddpg, tau=0.01)
    with torch.no_grad():
        for p in list(agent.mu.parameters()) + list(agent.Q.parameters()):
            p.add_(torch.randn_like(p))
    theta = [p.clone() for p in list(agent.mu.parameters()) + list(agent.Q.parameters())]
    theta_ = [p.clone() for p in list(agent.mu_target.parameters()) + list(agent.Q_target.parameters())]
    agent.update_network_parameters()
    after = list(agent.mu_target.parameters()) + list(agent.Q_target.parameters())
    for t, t_, new in zip(theta, theta_, after):
        assert torch.allclose(new, 0.01 * t + 0.99 * t_, atol=1e-6)
        assert not torch.equal(new, t_)
    agent.update_network_parameters(tau=1.0)  # tau = 1 is a hard copy
    for t, new in zip(theta, list(agent.mu_target.parameters()) + list(agent.Q_target.parameters())):
        assert torch.equal(new, t)


def test_target_y_on_hand_computed_batch(ddpg, monkeypatch):
    """y = r + gamma (1 - d) Q'(s', mu'(s')) with a terminal (d=1) and a truncated (stored d=0) transition."""
    agent = make_agent(ddpg, gamma=0.9, batch_size=3)
    agent.Q_target, agent.mu_target = Affine(), Affine()
    s_ = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [-1.0, 0.0, 2.0]])
    batch = (torch.zeros(3, 3), torch.zeros(3, 2), torch.tensor([1.0, -2.0, 0.5]), s_,
             torch.tensor([0.0, 1.0, 0.0]))  # row 1 terminated; row 2 truncated by the time limit: d = 0
    monkeypatch.setattr(agent.memory, "sample_buffer", lambda n: batch)
    agent.memory.mem_cntr = 3
    seen = {}
    real_mse = ddpg.ddpg_torch.F.mse_loss

    def spy(pred, target):
        seen["pred"], seen["y"] = pred, target
        return real_mse(pred, target)

    monkeypatch.setattr(ddpg.ddpg_torch.F, "mse_loss", spy)
    agent.learn()
    # Q'(s', mu'(s')) = sum(s') + 10 (s'_0 + s'_1): row 0: 6 + 30 = 36; row 2: 1 - 10 = -9
    expected = torch.tensor([1.0 + 0.9 * 36.0, -2.0, 0.5 + 0.9 * -9.0])
    assert seen["y"].shape == (3,) and seen["pred"].shape == (3,)
    assert torch.allclose(seen["y"], expected)
    assert not seen["y"].requires_grad


def test_actor_step_raises_q_and_critic_loss_falls(ddpg):
    agent = make_agent(ddpg, batch_size=64, lr_actor=1e-3, lr_critic=1e-3, gamma=0.5)
    rng = np.random.default_rng(0)
    for _ in range(64):
        s = rng.normal(size=3)
        agent.remember(s, rng.uniform(-1, 1, size=2), float(s.sum()), rng.normal(size=3), False)
    # plain gradient ascent on Q: a small enough step must raise Q(s, mu(s)) (Adam's momentum need not)
    agent.actor_optimizer = torch.optim.SGD(agent.mu.parameters(), lr=1e-3)
    s = torch.as_tensor(agent.memory.state_memory[:64])
    losses = []
    for _ in range(200):
        mu_old = copy.deepcopy(agent.mu)
        critic_loss, _ = agent.learn()
        losses.append(float(critic_loss))
        with torch.no_grad():  # with the critic as it is after the step, the new actor scores higher
            assert agent.Q(s, agent.mu(s)).mean() > agent.Q(s, mu_old(s)).mean()
    assert np.mean(losses[-10:]) < 0.25 * np.mean(losses[:10])


def test_learn_waits_for_a_full_batch(ddpg):
    agent = make_agent(ddpg, batch_size=4)
    for _ in range(3):
        agent.remember(np.zeros(3), np.zeros(2), 0.0, np.zeros(3), False)
    before = copy.deepcopy(agent.mu.state_dict())
    assert agent.learn() is None
    assert all(torch.equal(before[k], v) for k, v in agent.mu.state_dict().items())


def test_choose_action_clips_noisy_actions_to_bounds(ddpg):
    noise = ddpg.noise.GaussianActionNoise(np.zeros(2), sigma=50.0, seed=0)
    agent = make_agent(ddpg, noise=noise)
    actions = np.array([agent.choose_action(np.ones(3)) for _ in range(50)])
    assert actions.shape == (50, 2)
    assert actions.min(0).tolist() == [-2.0, 0.0] and actions.max(0).tolist() == [2.0, 1.0]
    deterministic = agent.choose_action(np.ones(3), evaluate=True)
    assert np.array_equal(deterministic, agent.choose_action(np.ones(3), evaluate=True))


# --- buffer ----------------------------------------------------------------------------------------------
def test_buffer_wraps_around_and_samples_only_filled_slots(ddpg):
    buf = ddpg.buffer.ReplayBuffer(5, 2, 1, seed=0)
    for i in range(3):
        buf.store_transition(np.full(2, i), np.full(1, i), i, np.full(2, i + 0.5), i == 2)
    s, a, r, s_, d = buf.sample_buffer(200)
    assert s.shape == (200, 2) and a.shape == (200, 1) and r.shape == (200,) and d.shape == (200,)
    assert s.dtype == torch.float32 and set(r.tolist()) == {0.0, 1.0, 2.0}  # never an empty slot
    assert torch.equal(d, (r == 2).float()) and torch.equal(s_[:, 0], r + 0.5)
    for i in range(3, 7):
        buf.store_transition(np.full(2, i), np.full(1, i), i, np.full(2, i), False)
    assert len(buf) == 5 and buf.mem_cntr == 7
    assert buf.reward_memory.tolist() == [5, 6, 2, 3, 4]  # 0 and 1 overwritten by 5 and 6
    assert set(buf.sample_buffer(500)[2].tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}


def test_buffer_sampling_is_seeded(ddpg):
    draws = []
    for _ in range(2):
        buf = ddpg.buffer.ReplayBuffer(50, 1, 1, seed=3)
        for i in range(50):
            buf.store_transition(np.zeros(1), np.zeros(1), i, np.zeros(1), False)
        draws.append(buf.sample_buffer(20)[2])
    assert torch.equal(draws[0], draws[1])


# --- noise -----------------------------------------------------------------------------------------------
def test_ou_noise_long_run_std_reset_and_seeding(ddpg):
    sigma, theta, dt = 0.3, 1.0, 0.1
    noise = ddpg.noise.OUActionNoise(np.zeros(2), sigma=sigma, theta=theta, dt=dt, seed=0)
    x = np.array([noise() for _ in range(100_000)])[1000:]
    expected = sigma / np.sqrt(2 * theta - theta ** 2 * dt)
    assert np.allclose(x.std(axis=0), expected, rtol=0.05)
    assert np.allclose(x.mean(axis=0), 0.0, atol=0.05)
    lag1 = np.corrcoef(x[:-1, 0], x[1:, 0])[0, 1]
    assert abs(lag1 - (1 - theta * dt)) < 0.02  # temporally correlated, unlike Gaussian noise
    noise.reset()
    assert np.array_equal(noise.x_prev, np.zeros(2))
    a = ddpg.noise.OUActionNoise(np.zeros(2), seed=7)
    b = ddpg.noise.OUActionNoise(np.zeros(2), seed=7)
    c = ddpg.noise.OUActionNoise(np.zeros(2), seed=8)
    seq_a, seq_b, seq_c = ([n() for _ in range(5)] for n in (a, b, c))
    assert np.array_equal(seq_a, seq_b) and not np.array_equal(seq_a, seq_c)


def test_gaussian_noise_statistics(ddpg):
    noise = ddpg.noise.GaussianActionNoise(np.zeros(3), sigma=0.2, seed=0)
    x = np.array([noise() for _ in range(20_000)])
    assert np.allclose(x.std(axis=0), 0.2, rtol=0.05)
    assert abs(np.corrcoef(x[:-1, 0], x[1:, 0])[0, 1]) < 0.03


# --- checkpoints -----------------------------------------------------------------------------------------
def test_save_then_load_gives_identical_actions(ddpg, tmp_path):
    agent = make_agent(ddpg, seed=1)
    for _ in range(8):
        agent.remember(np.random.randn(3), np.random.rand(2), 1.0, np.random.randn(3), False)
    agent.learn()
    agent.save_models(tmp_path)
    other = make_agent(ddpg, seed=2)
    obs = np.random.randn(10, 3).astype(np.float32)
    assert not np.array_equal(agent.choose_action(obs, evaluate=True), other.choose_action(obs, evaluate=True))
    other.load_models(tmp_path)
    assert np.array_equal(agent.choose_action(obs, evaluate=True), other.choose_action(obs, evaluate=True))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_load_refuses_mismatched_and_corrupt_checkpoints(ddpg, tmp_path):
    make_agent(ddpg).save_models(tmp_path)
    with pytest.raises(UsageError, match="does not fit"):
        make_agent(ddpg, input_dims=5).load_models(tmp_path)
    (tmp_path / "critic.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="cannot read checkpoint"):
        make_agent(ddpg).load_models(tmp_path)
    (tmp_path / "actor.pt").unlink()
    with pytest.raises(UsageError, match="no saved agent"):
        make_agent(ddpg).load_models(tmp_path)


def test_buffer_state_dict_round_trip_continues_the_same_samples(ddpg):
    buffer = ddpg.buffer.ReplayBuffer(4, 3, 2, seed=7)
    for i in range(6):  # wrapped: slots hold transitions 4, 5, 2, 3
        buffer.store_transition(np.full(3, i), np.full(2, i), float(i), np.full(3, i + 1), i == 5)
    state = buffer.state_dict()
    restored = ddpg.buffer.ReplayBuffer(4, 3, 2, seed=99)
    restored.load_state_dict(state)
    assert restored.mem_cntr == 6 and len(restored) == 4
    for a, b in zip(buffer.sample_buffer(5), restored.sample_buffer(5)):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="holds 4 transitions, this one 8"):
        ddpg.buffer.ReplayBuffer(8, 3, 2).load_state_dict(state)


def test_noise_state_dict_round_trip_continues_the_same_draws(ddpg):
    for noise in (ddpg.noise.OUActionNoise(np.zeros(2), seed=3), ddpg.noise.GaussianActionNoise(np.zeros(2), seed=3)):
        noise()
        state = noise.state_dict()
        expected = [noise() for _ in range(3)]
        noise.load_state_dict(state)
        assert np.array_equal([noise() for _ in range(3)], expected)


# --- what the shared machinery asks the agent --------------------------------------------------------------
def test_critic_estimates_diagnostics_and_labels(ddpg):
    agent = make_agent(ddpg)
    states = torch.randn(6, 3)
    estimates = agent.critic_estimates(states)
    assert set(estimates) == set(agent.critic_labels) == {"Q"}
    assert torch.allclose(estimates["Q"], agent.Q(states, agent.mu(states)).view(-1))
    assert agent.diagnostics(states) == {}  # DDPG keeps no record of its own


def test_rng_state_round_trip_continues_the_same_samples_and_noise(ddpg):
    noise = ddpg.noise.OUActionNoise(np.zeros(2), seed=5)
    agent = make_agent(ddpg, noise=noise)
    for i in range(10):
        agent.remember(np.full(3, i), np.zeros(2), float(i), np.zeros(3), False)
    noise()
    state = agent.rng_state()
    assert set(state) == {"buffer", "noise"}
    expected = (agent.memory.sample_buffer(4)[2], [noise() for _ in range(3)])
    agent.memory.sample_buffer(4), noise()  # move both generators on
    agent.set_rng_state(state)
    assert torch.equal(agent.memory.sample_buffer(4)[2], expected[0])
    assert np.array_equal([noise() for _ in range(3)], expected[1])
    assert set(make_agent(ddpg).rng_state()) == {"buffer"}  # no noise process: nothing to save for it


def test_critic_weight_decay_adds_the_l2_term_to_the_critics_adam_step(ddpg):
    """--critic-weight-decay w: the critic's Adam step follows the gradient of L + w/2 |theta_Q|^2 (Adam's
    weight_decay), as the DDPG paper's critic; 0 (the default) is the plain step."""
    def agent(weight_decay):
        torch.manual_seed(0)
        a = ddpg.ddpg_torch.Agent(3, 1, -np.ones(1), np.ones(1), fc1_dims=8, fc2_dims=8, batch_size=4, seed=0,
                                  critic_weight_decay=weight_decay)
        for t in range(4):
            a.remember(np.full(3, t), np.zeros(1), 1.0, np.full(3, t + 1), False)
        return a

    assert agent(0.0).critic_optimizer.param_groups[0]["weight_decay"] == 0.0
    plain, decayed = agent(0.0), agent(0.01)
    reference = copy.deepcopy(decayed.Q)
    manual = torch.optim.Adam(reference.parameters(), lr=decayed.critic_optimizer.param_groups[0]["lr"])
    s, a, r, s_, done = copy.deepcopy(decayed.memory).sample_buffer(4)
    with torch.no_grad():
        y = r + decayed.gamma * (1 - done) * decayed.Q_target(s_, decayed.mu_target(s_)).view(-1)
    loss = torch.nn.functional.mse_loss(reference(s, a).view(-1), y)
    loss = loss + 0.01 / 2 * sum((p ** 2).sum() for p in reference.parameters())  # the L2 term, by hand
    loss.backward()
    manual.step()
    decayed.learn()
    plain.learn()
    for p, q in zip(decayed.Q.parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert any(not torch.allclose(p, q) for p, q in zip(decayed.Q.parameters(), plain.Q.parameters()))


def test_without_target_networks_y_uses_the_online_networks_and_nothing_is_soft_updated(ddpg, monkeypatch):
    """--no-target-networks: y = r + gamma (1 - d) Q(s', mu(s')) with the online Q and mu; Q', mu' never move."""
    agent = make_agent(ddpg, gamma=0.9, batch_size=3, target_networks=False)
    agent.Q_target, agent.mu_target = Affine(), Affine()  # were the targets asked, y would be the target test's
    s_ = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [-1.0, 0.0, 2.0]])
    batch = (torch.zeros(3, 3), torch.zeros(3, 2), torch.tensor([1.0, -2.0, 0.5]), s_, torch.tensor([0.0, 1.0, 0.0]))
    monkeypatch.setattr(agent.memory, "sample_buffer", lambda n: batch)
    agent.memory.mem_cntr = 3
    with torch.no_grad():  # the online networks before this update
        expected = batch[2] + 0.9 * (1 - batch[4]) * agent.Q(s_, agent.mu(s_)).view(-1)
    seen = {}
    real_mse = ddpg.ddpg_torch.F.mse_loss

    def spy(pred, target):
        seen["y"] = target
        return real_mse(pred, target)

    monkeypatch.setattr(ddpg.ddpg_torch.F, "mse_loss", spy)
    lerps = []
    monkeypatch.setattr(agent, "update_network_parameters", lambda tau=None: lerps.append(tau))
    agent.learn()
    assert torch.allclose(seen["y"], expected) and expected[1] == -2.0 and lerps == []


def test_no_noise_acts_with_mu_alone(ddpg):
    """--noise none: N = 0, so a = mu(s) (the noise-free action --evaluate plays), with nothing to save."""
    noise = ddpg.noise.NoNoise(mu=np.zeros(2))
    agent = make_agent(ddpg, noise=noise)
    s = np.array([0.3, -0.2, 0.1], dtype=np.float32)
    assert np.array_equal(agent.choose_action(s), agent.choose_action(s, evaluate=True))
    assert np.array_equal(noise(), np.zeros(2)) and noise.state_dict() == {}
    agent.set_rng_state(agent.rng_state())  # the round trip --resume makes

"""rlharness.diagnostics: the critic's estimate beside the return obtained (maximization bias), read back from the
replay buffer, and the agent's own records (SAC's alpha); recording them changes nothing that is learned."""
import types

import numpy as np
import pytest
import torch

import rlharness.run
from rlharness import diagnostics, evaluation

from conftest import dirs, read_scores, run_in_process


def test_discounted_returns_on_a_hand_made_trajectory():
    # G_2 = 4; G_1 = 2 + 0.5 * 4 = 4; G_0 = 1 + 0.5 * 4 = 3
    assert np.allclose(diagnostics.discounted_returns(np.array([1.0, 2.0, 4.0]), 0.5), [3.0, 4.0, 4.0])
    assert np.allclose(diagnostics.discounted_returns(np.array([1.0, 1.0]), 1.0), [2.0, 1.0])


def fake_agent(buffer, estimate):
    return types.SimpleNamespace(memory=buffer, device=torch.device("cpu"),
                                 critic_estimates=lambda s: {"Q": torch.full((len(s),), estimate)},
                                 diagnostics=lambda s: {"probe": {"first_state": float(s[0, 0]), "n": len(s)}})


def test_q_bias_row_reads_the_last_episode_from_the_buffer(ddpg):
    buffer = ddpg.buffer.ReplayBuffer(5, 2, 1)  # a ring of 5: the episode below wraps around
    buffer.store_transition(np.zeros(2), np.zeros(1), 100.0, np.zeros(2), True)  # an earlier episode's end
    for t, r in enumerate([1.0, 2.0, 4.0]):
        buffer.store_transition(np.full(2, t), np.zeros(1), r, np.zeros(2), t == 2)
    row = diagnostics.q_bias_row(fake_agent(buffer, 7.0), episode_len=3, gamma=0.5)
    assert row == {"real_return": pytest.approx((3.0 + 4.0 + 4.0) / 3), "Q": 7.0, "states": 3}
    for _ in range(3):  # wrap around: the last 3 transitions sit in slots 4, 0 and 1
        buffer.store_transition(np.full(2, 9.0), np.zeros(1), 0.0, np.zeros(2), False)
    assert diagnostics.last_episode(buffer, 3).tolist() == [4, 0, 1] and len(buffer) == 5
    buffer.store_transition(np.full(2, 8.0), np.zeros(1), 0.0, np.zeros(2), False)
    assert diagnostics.last_episode(buffer, 3).tolist() == [0, 1, 2]
    assert diagnostics.last_episode(buffer, 99).tolist() == [3, 4, 0, 1, 2]  # at most the whole buffer, oldest first


def test_q_bias_row_leaves_out_the_tail_of_a_truncated_episode(ddpg):
    buffer = ddpg.buffer.ReplayBuffer(10, 2, 1)
    for _ in range(6):
        buffer.store_transition(np.zeros(2), np.zeros(1), 1.0, np.zeros(2), False)  # cut by the time limit
    # gamma 0.5: horizon 1 / (1 - gamma) = 2 steps left out; returns from the first 4 states
    row = diagnostics.q_bias_row(fake_agent(buffer, 0.0), episode_len=6, gamma=0.5)
    # G_0..G_3 of six rewards of 1 at gamma 0.5: 1.96875, 1.9375, 1.875, 1.75 (by hand); their mean 1.8828125
    assert row["states"] == 4 and row["real_return"] == pytest.approx(1.8828125)


def test_agent_records_ask_the_agent_at_the_last_episodes_states(ddpg):
    buffer = ddpg.buffer.ReplayBuffer(10, 2, 1)
    for t in range(7):
        buffer.store_transition(np.full(2, t), np.zeros(1), 0.0, np.zeros(2), False)
    assert diagnostics.agent_records(fake_agent(buffer, 0.0), 4) == {"probe": {"first_state": 3.0, "n": 4}}


def test_every_run_writes_the_critic_bias_and_sacs_alpha(algo, tmp_path, capsys):
    code, out, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "1", *algo.small,
                                           *dirs(tmp_path)], capsys)
    assert code == 0, err
    plots = tmp_path / "run" / "plots"
    q_bias = (plots / f"{algo.name}_Pendulum-v1_q_bias.csv").read_text().splitlines()
    columns = {"ddpg": "episode,env_steps,real_return,Q,states",
               "sac": "episode,env_steps,real_return,min_Q,Q1,Q2,states"}[algo.name]
    assert q_bias[0] == columns and len(q_bias) == 2  # recorded from the first episode on
    row = dict(zip(columns.split(","), map(float, q_bias[1].split(","))))
    assert row["episode"] == 1 and row["env_steps"] == 200 and row["states"] == 100  # truncated: 100 left out
    assert -1700 < row["real_return"] < 0  # Pendulum's rewards are in [-16.3, 0]
    assert (plots / f"{algo.name}_Pendulum-v1_q_bias.png").read_bytes()[:4] == b"\x89PNG"
    if algo.name == "sac":
        assert row["min_Q"] == pytest.approx(min(row["Q1"], row["Q2"]), abs=0.5)
        alpha = (plots / "sac_Pendulum-v1_alpha.csv").read_text().splitlines()
        assert alpha[0] == "episode,env_steps,alpha,entropy,target_entropy" and alpha[1].endswith(",-1")
        assert (plots / "sac_Pendulum-v1_alpha.png").is_file()
    else:
        assert not list(plots.glob("*alpha*"))


def test_recording_the_critic_does_not_change_what_is_learned(algo, tmp_path, capsys, monkeypatch):
    argv = ["--env", "Pendulum-v1", "--episodes", "3", *algo.small, "--learning-starts", "200"]
    curves = []
    for run, every in (("often", 1), ("rarely", 1000)):
        monkeypatch.setattr(rlharness.run.TrainingRun, "Q_BIAS_EVERY", every)
        assert run_in_process(algo, [*argv, *dirs(tmp_path, run)], capsys)[0] == 0
        curves.append(read_scores(tmp_path / run / "plots" / f"{algo.name}_Pendulum-v1.csv"))
    assert np.array_equal(curves[0], curves[1])
    q_bias = [(tmp_path / run / "plots" / f"{algo.name}_Pendulum-v1_q_bias.csv").read_text().splitlines()
              for run in ("often", "rarely")]
    assert len(q_bias[0]) == 4 and len(q_bias[1]) == 2  # every episode; the first only


def test_each_evaluation_records_the_critic_against_the_deterministic_policy(algo, tmp_path, capsys):
    """The first episode of each evaluation (after episode 1, then every --eval-every steps) is also set beside the
    critic's estimate; it is not in the buffer and not counted as training steps."""
    code, out, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "2", *algo.small,
                                           "--eval-every", "200", *dirs(tmp_path)], capsys)
    assert code == 0, err
    assert "2 episodes, 400 env steps" in out  # the evaluation's episodes are not training steps
    rows = (tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1_q_bias_policy.csv").read_text().splitlines()
    estimates = {"ddpg": "Q", "sac": "min_Q,Q1,Q2"}[algo.name]
    assert rows[0] == f"episode,env_steps,real_return,{estimates},states,score" and len(rows) == 3
    first = dict(zip(rows[0].split(","), map(float, rows[1].split(","))))
    assert first["episode"] == 1 and first["states"] == 100  # truncated at 200 steps: the last 100 left out
    assert -3300 < first["score"] < 0 and -1700 < first["real_return"] < 0
    evaluations = (tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1_eval.csv").read_text().splitlines()
    assert len(evaluations) == 3  # the record's score is the evaluation's first episode, one of its two
    row = dict(zip(evaluations[0].split(","), map(float, evaluations[1].split(","))))
    assert row["min"] <= first["score"] <= row["max"]


def test_bias_row_of_a_played_episode_discounts_its_rewards(ddpg):
    class Env:
        """Three steps of rewards 1, 2, 4 from states 0, 1, 2, then terminal."""
        def reset(self, seed=None):
            self.t = 0
            return np.array([0.0]), {}

        def step(self, action):
            self.t += 1
            return np.array([float(self.t)]), [1.0, 2.0, 4.0][self.t - 1], self.t == 3, False, {}

    class Agent:
        device = torch.device("cpu")

        def choose_action(self, observation, evaluate=False):
            return np.zeros(1)

        def critic_estimates(self, states):
            return {"Q": states[:, 0] * 10}

    episode = evaluation.play_episode(Agent(), Env(), seed=0)
    row = diagnostics.bias_row(Agent(), episode.states, episode.rewards, episode.terminated, gamma=0.5)
    # G = (1 + 0.5*2 + 0.25*4, 2 + 0.5*4, 4) = (3, 4, 4): mean 11/3; Q = (0, 10, 20): mean 10
    assert row == pytest.approx(dict(real_return=11 / 3, Q=10.0, states=3))
    assert episode.terminated and episode.score == 7.0


def test_the_lecture_claims_switched_off_run_end_to_end(algo, tmp_path, capsys):
    """Each switch of benchmarks/claims.py trains, and the critic record names the critics it used."""
    switches = {"ddpg": ["--noise", "none", "--no-target-networks"],
                "sac": ["--critics", "1", "--no-target-networks", "--alpha", "0"]}[algo.name]
    code, out, err = run_in_process(algo, ["--env", "Pendulum-v1", "--episodes", "1", *algo.small, *switches,
                                           "--learning-starts", "100", *dirs(tmp_path)], capsys)
    assert code == 0, err
    header = (tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1_q_bias.csv").read_text().splitlines()[0]
    assert header == {"ddpg": "episode,env_steps,real_return,Q,states",
                      "sac": "episode,env_steps,real_return,min_Q,Q1,states"}[algo.name]
    if algo.name == "sac":
        alpha = (tmp_path / "run" / "plots" / "sac_Pendulum-v1_alpha.csv").read_text().splitlines()[1].split(",")
        assert float(alpha[2]) == 0.0  # alpha stays 0: no entropy bonus

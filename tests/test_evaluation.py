"""rlharness.evaluation (--evaluate): deterministic episodes of the saved agent, a GIF of the first, --render."""
import re

import numpy as np
import pytest
import torch
from PIL import Image

from rlharness import evaluation
from rlharness.envs import make_env
from rlharness.seeding import stream_seeds

from conftest import csv_rows, dirs, run_in_process


class Zero:
    """An agent that always pushes with zero torque, and remembers whether it was asked for exploration."""

    def __init__(self):
        self.evaluate = []

    def choose_action(self, observation, evaluate=False):
        self.evaluate.append(evaluate)
        return np.zeros(1, dtype=np.float32)


def test_evaluate_agent_plays_deterministic_seeded_episodes():
    agent = Zero()
    scores = evaluation.evaluate_agent(agent, make_env("Pendulum-v1"), 2, seed=3)
    again = evaluation.evaluate_agent(Zero(), make_env("Pendulum-v1"), 2, seed=3)
    assert scores == again and scores[0] != scores[1]  # episode i is seeded seed + i
    assert len(agent.evaluate) == 400 and all(agent.evaluate)


def test_gif_keeps_at_most_max_frames_and_always_the_last(tmp_path):
    frames = [np.full((20, 30, 3), i, dtype=np.uint8) for i in range(11)]
    gif = evaluation.save_gif(frames, tmp_path / "g.gif", fps=10, max_frames=4, width=60)
    with Image.open(gif) as image:
        assert image.size == (60, 40)
        firsts = []
        for i in range(image.n_frames):
            image.seek(i)
            firsts.append(np.asarray(image.convert("RGB"))[0, 0, 0])
    assert firsts == [0, 3, 6, 9, 10]  # every third frame, then the last one
    assert [p.name for p in tmp_path.iterdir()] == ["g.gif"]


def test_evaluate_records_a_gif_and_render_needs_a_display(algo, tmp_path, capsys, monkeypatch):
    argv = ["--env", "Pendulum-v1", *dirs(tmp_path)]  # --evaluate takes the network sizes from agent.json
    assert run_in_process(algo, [*argv, *algo.small, "--episodes", "1"], capsys)[0] == 0
    code, out, err = run_in_process(algo, [*argv, "--evaluate", "2", "--gif"], capsys)
    assert code == 0, err
    assert out.count("evaluation episode") == 2 and "mean score" in out
    gif = tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1.gif"
    assert f"first episode (201 frames) recorded in {gif}" in out  # reset plus 200 steps
    with Image.open(gif) as image:
        # 201 frames, at most 150 kept: every second one (0, 2, ..., 200), the last among them
        assert image.n_frames == 101 and image.size[0] == 400
    assert gif.stat().st_size < 5e6
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = run_in_process(algo, [*argv, "--evaluate", "1", "--render"], capsys)
    assert code == 2 and "--render needs a display" in err


def test_an_evaluation_is_due_after_the_first_episode_then_past_every_multiple_of_every():
    periodic = evaluation.PeriodicEvaluation("Pendulum-v1", every=1000, n_episodes=1, seed=0)
    assert periodic.due(37)  # the first episode's end, however short
    periodic.rows.append(dict(env_steps=37))
    assert not periodic.due(999) and periodic.due(1000) and periodic.due(1500)
    periodic.rows.append(dict(env_steps=1500))  # an episode ended past 1000: the next one is due at 2000
    assert not periodic.due(1999) and periodic.due(2000)
    periodic.rows.append(dict(env_steps=4200))  # a long episode crossed two multiples: one evaluation, next at 5000
    assert not periodic.due(4999) and periodic.due(5000)


def test_each_evaluation_plays_fresh_seeds_on_an_env_of_its_own(monkeypatch):
    class Env:
        """Records the seeds of its resets; an episode is two steps of reward seed."""
        made, seeds = 0, []

        def __init__(self):
            Env.made += 1

        def reset(self, seed=None):
            self.seeds.append(seed)
            self.seed, self.t = seed, 0
            return np.zeros(1), {}

        def step(self, action):
            self.t += 1
            return np.zeros(1), float(self.seed), False, self.t == 2, {}

        def close(self):
            pass

    monkeypatch.setattr(evaluation, "make_env", lambda env_id: Env())
    periodic = evaluation.PeriodicEvaluation("Fake-v0", every=100, n_episodes=3, seed=10)
    agent = Zero()
    for k, steps in enumerate((50, 100, 230)):
        episodes = periodic.play(agent, episode=k + 1, total_steps=steps, minutes=0.5)
        assert len(episodes) == 3 and all(e.states.shape == (2, 1) and not e.terminated for e in episodes)
    assert Env.made == 1 and Env.seeds == list(range(10, 19))  # evaluation k: seeds 10 + 3k, ..., 12 + 3k
    assert all(agent.evaluate) and len(agent.evaluate) == 18
    last = periodic.rows[-1]
    # its episodes score 2 * 16, 2 * 17, 2 * 18
    assert last == dict(episode=3, env_steps=230, minutes=0.5, mean=34.0, std=pytest.approx(np.std([32, 34, 36])),
                        min=32.0, max=36.0, episodes=3, seconds=last["seconds"])
    periodic.close()


def test_evaluating_often_changes_nothing_that_is_learned(algo, tmp_path, capsys):
    """The evaluation draws nothing from training's generators: the scores and the final weights are the same."""
    argv = ["--env", "Pendulum-v1", "--episodes", "3", *algo.small, "--learning-starts", "200", "--eval-episodes", "1"]
    for run, every in (("often", "1"), ("rarely", "100000")):
        code, out, err = run_in_process(algo, [*argv, "--eval-every", every, *dirs(tmp_path, run)], capsys)
        assert code == 0, err
        assert out.count(" min evaluation ") == (3 if run == "often" else 1)  # the episode lines it ends
    plots = [tmp_path / run / "plots" for run in ("often", "rarely")]
    name = f"{algo.name}_Pendulum-v1"
    assert csv_rows(plots[0] / f"{name}.csv") == csv_rows(plots[1] / f"{name}.csv")
    assert len(csv_rows(plots[0] / f"{name}_eval.csv")) == 4 and len(csv_rows(plots[1] / f"{name}_eval.csv")) == 2
    parts = sorted(p.name for p in (tmp_path / "often" / "tmp" / "latest").glob("*.pt"))
    assert "actor.pt" in parts and any("optimizer" in p for p in parts)
    for part in parts:
        if part != "training_state.pt":  # it holds the wall-clock minutes
            weights = [torch.load(tmp_path / run / "tmp" / "latest" / part) for run in ("often", "rarely")]
            assert same(*weights), part


def same(a, b) -> bool:
    """Nested state dicts (tensors, numbers, lists) hold the same values."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b


def test_best_is_the_agent_of_the_best_evaluation_and_replays_its_mean(algo, tmp_path, capsys):
    argv = ["--env", "Pendulum-v1", *dirs(tmp_path)]
    code, out, err = run_in_process(algo, [*argv, "--episodes", "4", *algo.small, "--learning-starts", "200",
                                           "--eval-every", "200", "--seed", "3"], capsys)
    assert code == 0, err
    rows = csv_rows(tmp_path / "run" / "plots" / f"{algo.name}_Pendulum-v1_eval.csv")
    header, rows = rows[0], [dict(zip(rows[0], map(float, row))) for row in rows[1:]]
    assert header == ["episode", "env_steps", "mean", "std", "min", "max", "episodes"] and len(rows) == 4
    k = max(range(len(rows)), key=lambda i: rows[i]["mean"])  # the first of the best: best/ saves on a strict rise
    printed = float(re.search(r"best evaluation mean (\S+)\)", out).group(1))
    assert printed == pytest.approx(rows[k]["mean"], abs=0.051)  # the CSV has 4 decimals, the line 1
    seed = stream_seeds(3)["evaluation"] + 2 * k  # evaluation k played these two start states
    code, out, err = run_in_process(algo, [*argv, "--evaluate", "2", "--seed", str(seed)], capsys)
    assert code == 0, err
    mean, std = map(float, re.search(r"mean score (\S+) \+- (\S+) over 2 episodes", out).groups())
    assert (mean, std) == pytest.approx((rows[k]["mean"], rows[k]["std"]), abs=0.051)

"""rlharness.evaluation (--evaluate): deterministic episodes of the saved agent, a GIF of the first, --render."""
import numpy as np
from PIL import Image

from rlharness import evaluation
from rlharness.envs import make_env

from conftest import dirs, run_in_process


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

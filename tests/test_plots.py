"""rlharness.plots and the folders' utils.py: the running mean, the CSVs beside every figure, the figures."""
import numpy as np

from rlharness import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_running_mean_matches_a_plain_loop():
    scores = np.random.default_rng(0).normal(size=250)
    expected = [scores[max(0, i - 99):i + 1].mean() for i in range(250)]
    assert np.allclose(plots.running_mean(list(scores)), expected)


def test_scores_csv_has_a_row_an_episode(tmp_path):
    csv_file = plots.write_scores_csv([1.0, 2.0, 6.0], [10, 20, 30], tmp_path / "x" / "c.csv",
                                      minutes=[0.5, 1.0, 1.25])
    rows = csv_file.read_text().splitlines()
    assert rows[0] == "episode,env_steps,score,avg100,minutes" and rows[3] == "3,30,6.0000,3.0000,1.2500"
    untimed = plots.write_scores_csv([1.0], [10], tmp_path / "untimed.csv").read_text().splitlines()
    assert untimed[1] == "1,10,1.0000,1.0000,"  # no minutes given: an empty cell
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["c.csv", "untimed.csv", "x"]  # no temporary files


def test_write_csv_writes_floats_short_and_the_rest_as_is(tmp_path):
    rows = [dict(episode=1, value=1 / 3, name="a"), dict(episode=5, value=-2e-7, name="b")]
    assert plots.write_csv(rows, tmp_path / "r.csv").read_text() == "episode,value,name\n1,0.333333,a\n5,-2e-07,b\n"


def test_each_folders_learning_curve_is_a_png(ddpg, sac, tmp_path):
    for utils in (ddpg.utils, sac.utils):
        figure_file = tmp_path / utils.__name__ / "curve.png"
        scores = list(np.linspace(-200, 250, 150))
        assert utils.plot_learning_curve(list(range(1, 151)), scores, figure_file, "X",
                                         "LunarLanderContinuous-v2") == figure_file
        assert figure_file.read_bytes()[:8] == PNG
        assert [p.name for p in figure_file.parent.iterdir()] == ["curve.png"]  # the CSV is TrainingRun's


def test_sacs_alpha_figure(sac, tmp_path):
    rows = [dict(episode=e, env_steps=100 * e, alpha=0.9 ** e, entropy=1.0 - 0.1 * e, target_entropy=-2.0)
            for e in (1, 5, 10)]
    assert sac.utils.plot_alpha(rows, tmp_path / "a.png", "t").read_bytes()[:8] == PNG

"""SAC/soft_actor_critic.ipynb (the lecture's Code Ex. 2) runs top to bottom with tiny settings.

The notebook is executed with nbclient in a fresh kernel of this interpreter, from its own folder as Jupyter
runs it, with the settings shrunk through its SAC_NB_* environment variables: 1,100 env steps (one finished
1,000-step HalfCheetah episode), 500 of them random, batch 32, 32 hidden units.
"""
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from rlharness.cli import run_main

from conftest import ROOT

pytest.importorskip("mujoco", reason="the notebook trains on MuJoCo HalfCheetah-v4 and mujoco is not installed")

NOTEBOOK = ROOT / "SAC" / "soft_actor_critic.ipynb"
TINY = {"STEPS": 1100, "LEARNING_STARTS": 500, "BATCH": 32, "HIDDEN": 32, "SEED": 0}


def cells_tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if tag in cell.get("metadata", {}).get("tags", [])]


def stdout_of(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def has_png(cell: nbformat.NotebookNode) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.outputs)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after a run with the tiny settings, plus the tiny run's scores and checkpoint folder."""
    tmp = tmp_path_factory.mktemp("notebook")
    kernel_dir = tmp / "jupyter" / "kernels" / "sac-test"  # a kernel of this interpreter, whatever else is installed
    kernel_dir.mkdir(parents=True)
    kernel_dir.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (tests)", "language": "python"}))
    with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this environment
        mp.setenv("JUPYTER_PATH", str(tmp / "jupyter"))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(tmp / "runtime"))
        mp.setenv("IPYTHONDIR", str(tmp / "ipython"))
        mp.delenv("MPLBACKEND", raising=False)
        for name, value in TINY.items():
            mp.setenv(f"SAC_NB_{name}", str(value))
        mp.setenv("SAC_NB_CHKPT_DIR", str(tmp / "checkpoints"))
        nb = nbformat.read(NOTEBOOK, as_version=4)
        # one extra cell at the end reads the training run's scores out of the kernel
        probe = nbformat.v4.new_code_cell("import json; print(json.dumps(scores))", metadata={"tags": ["probe"]})
        nb.cells.append(probe)
        client = NotebookClient(nb, timeout=120, kernel_name="sac-test",
                                resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        try:
            client.execute()
        except CellExecutionError as e:
            pytest.fail(f"a notebook cell failed:\n{e}")
    scores = json.loads(stdout_of(cells_tagged(nb, "probe")[0]))
    return nb, scores, tmp / "checkpoints"


def test_committed_notebook_is_valid_and_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "Colab" in first.source and "requirements.txt" in first.source


def test_every_code_cell_ran_once_in_order_and_the_demonstrations_hold(executed):
    """The fixture already fails on a cell error; here: no cell was skipped, and the live checks the markdown
    points to print True (targets start as exact copies; one learn() moves them by tau, as the formula says)."""
    nb, _, _ = executed
    counts = [cell.execution_count for cell in nb.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    out = "".join(stdout_of(cell) for cell in nb.cells if cell.cell_type == "code")
    assert "targets are exact copies (phi'_i = phi_i): True" in out
    assert "phi'_1 == phi'_1 + tau (phi_1 - phi'_1) after the step: True" in out


def test_training_ran_the_whole_step_budget(executed):
    nb, scores, _ = executed
    out = stdout_of(cells_tagged(nb, "train")[0])
    steps, episodes = map(int, re.search(r"trained (\d+) env steps, (\d+) episodes", out).groups())
    assert steps == TINY["STEPS"] and episodes == len(scores) == 1  # 1,000-step episodes: the second is cut short
    assert re.search(r"episode\s+1 score\s+-?\d+\.\d", out)


def test_curve_and_rendered_frames_are_shown_inline(executed):
    nb, _, _ = executed
    for tag in ("curve", "frame"):
        (cell,) = cells_tagged(nb, tag)
        assert has_png(cell), f"the {tag} cell showed no image"


def test_agent_is_saved_where_the_settings_say(executed):
    _, _, chkpt_dir = executed
    best = chkpt_dir / "best"
    assert (best / "actor.pt").is_file() and (best / "critic_1.pt").is_file()
    sizes = json.loads((best / "agent.json").read_text())
    assert sizes == {"algorithm": "sac", "env": "HalfCheetah-v4", "input_dims": 17, "n_actions": 6, "fc1_dims": 32,
                     "fc2_dims": 32}


def test_notebook_trains_the_same_run_as_main_sac(executed, sac, tmp_path, capsys):
    """Same settings, same seed: main_sac.py's first episode scores exactly what the notebook's did."""
    _, scores, _ = executed
    argv = ["--env", "HalfCheetah-v4", "--max-steps", str(TINY["STEPS"]), "--learning-starts",
            str(TINY["LEARNING_STARTS"]), "--batch-size", str(TINY["BATCH"]), "--fc1-dims", str(TINY["HIDDEN"]),
            "--fc2-dims", str(TINY["HIDDEN"]), "--seed", str(TINY["SEED"]), "--chkpt-dir", str(tmp_path / "c"),
            "--plot-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        run_main(sac.main_sac.main, argv)
    assert exit_info.value.code == 0, capsys.readouterr().err
    rows = (tmp_path / "sac_HalfCheetah-v4.csv").read_text().splitlines()[1:]
    assert [row.split(",")[2] for row in rows] == [f"{score:.4f}" for score in scores]


def setup_cell_source() -> str:
    (cell,) = cells_tagged(nbformat.read(NOTEBOOK, as_version=4), "setup")
    return cell.source


def test_the_first_code_cell_is_the_set_up(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "setup" in first_code.metadata.get("tags", []) and first_code.source.count("REPO_URL = ") == 2


def test_set_up_clones_the_repository_where_there_is_none_and_installs_only_what_is_missing(tmp_path):
    """This notebook uploaded alone (Colab): the set-up cell clones REPO_URL, finds every package of this venv
    already there and installs nothing; with no address it stops with one sentence saying what to set."""
    source = setup_cell_source() + "\nprint('SAC folder:', (REPO / 'SAC' / 'sac_torch.py').is_file())"
    env = {k: v for k, v in os.environ.items() if k != "SAC_NB_REPO_URL"}
    run = subprocess.run([sys.executable, "-c", source], cwd=tmp_path, capture_output=True, text=True,
                         env={**env, "SAC_NB_REPO_URL": str(ROOT)}, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"repository: {tmp_path / 'ddpg-sac'}; installed now: nothing (all there)" in run.stdout
    assert "SAC folder: True" in run.stdout
    again = subprocess.run([sys.executable, "-c", source], cwd=tmp_path, capture_output=True, text=True, env=env,
                           timeout=120)  # the clone is now below the working folder: found, not cloned again
    assert again.returncode == 0 and f"repository: {tmp_path / 'ddpg-sac'};" in again.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = subprocess.run([sys.executable, "-c", source], cwd=empty, capture_output=True, text=True, env=env,
                             timeout=120)
    assert missing.returncode == 1
    assert "RuntimeError: no clone of the repository here: set REPO_URL above" in missing.stderr

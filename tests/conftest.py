"""Both DDPG/ and SAC/ define modules named buffer, networks and utils (the lecture's flat layout).

`load_folder` imports a folder's modules afresh, evicting same-named modules loaded from the other folder.
The `algo` fixture runs a test once per algorithm, for the end-to-end tests of both main scripts. The machinery
the two folders share is the package rlharness, imported as any package is.
"""
import importlib
import signal
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from rlharness.cli import run_main

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
FLAT_MODULES = ("utils", "buffer", "networks", "noise", "ddpg_torch", "main_ddpg", "sac_torch", "main_sac")


@pytest.fixture(autouse=True, scope="session")
def sighup_as_from_a_terminal():
    """SIGHUP's default action, as a run started from a terminal has it, whatever started the tests: under nohup
    (or a CI runner that ignores SIGHUP) the tests of a closing terminal would otherwise see it ignored, which is
    what a run under nohup must do. The nohup test ignores it in its own process."""
    if not hasattr(signal, "SIGHUP"):
        yield
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


def load_folder(folder: str, names: tuple[str, ...]) -> types.SimpleNamespace:
    for name in FLAT_MODULES:
        sys.modules.pop(name, None)
    path = str(ROOT / folder)
    sys.path.insert(0, path)
    try:
        return types.SimpleNamespace(**{name: importlib.import_module(name) for name in names})
    finally:
        sys.path.remove(path)


@pytest.fixture(scope="module")
def ddpg() -> types.SimpleNamespace:
    """DDPG/'s modules: ddpg.buffer, ddpg.networks, ddpg.noise, ddpg.ddpg_torch, ddpg.utils, ddpg.main_ddpg."""
    return load_folder("DDPG", ("utils", "buffer", "networks", "noise", "ddpg_torch", "main_ddpg"))


@pytest.fixture(scope="module")
def sac() -> types.SimpleNamespace:
    """SAC/'s modules: sac.buffer, sac.networks, sac.sac_torch, sac.utils, sac.main_sac."""
    return load_folder("SAC", ("utils", "buffer", "networks", "sac_torch", "main_sac"))


SMALL = ["--fc1-dims", "64", "--fc2-dims", "64", "--batch-size", "64", "--threads", "1",
         "--eval-episodes", "2"]
ALGOS = {
    # name: folder, script, modules, flags for a small fast run
    "ddpg": ("DDPG", "main_ddpg", ("utils", "ddpg_torch", "main_ddpg"), [*SMALL, "--learning-starts", "0"]),
    "sac": ("SAC", "main_sac", ("utils", "sac_torch", "main_sac"), [*SMALL, "--learning-starts", "500"]),
}


@pytest.fixture(scope="module", params=list(ALGOS))
def algo(request):
    """One algorithm's modules, plus .name, .folder, .script, .main (its main module), .agent, .small."""
    folder, script, modules, small = ALGOS[request.param]
    ns = load_folder(folder, modules)
    ns.name, ns.folder, ns.script, ns.small = request.param, folder, script, small
    ns.main = getattr(ns, script)
    ns.agent = getattr(ns, f"{request.param}_torch").Agent
    return ns


def run_in_process(algo, argv, capsys):
    """Run the main script as `python main_<algo>.py argv` would, returning (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(algo.main.main, argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def read_scores(csv_file):
    return np.loadtxt(csv_file, delimiter=",", skiprows=1, ndmin=2)[:, 2]


def csv_rows(csv_file) -> list[list[str]]:
    """A CSV's cells as written (header included), without the minutes and seconds columns: wall-clock time
    differs."""
    lines = [line.split(",") for line in Path(csv_file).read_text().splitlines()]
    keep = [i for i, name in enumerate(lines[0]) if name not in ("minutes", "seconds")]
    return [[row[i] for i in keep] for row in lines]


def dirs(tmp_path, name="run"):
    return ["--chkpt-dir", str(tmp_path / name / "tmp"), "--plot-dir", str(tmp_path / name / "plots")]


def assert_linear_matches_float64(layer) -> None:
    """`layer` (an nn.Linear, whatever its weight's memory layout) computes y = x W^T + b and the gradients
    dL/dx = g W, dL/dW = g^T x, dL/db = sum_rows g as numpy computes them in float64 from the same values."""
    import torch

    x = torch.randn(7, layer.in_features, requires_grad=True)
    g = torch.randn(7, layer.out_features)
    trainable = layer.weight.requires_grad  # a target network's layers are frozen: thaw them for the check
    layer.requires_grad_(True).zero_grad(set_to_none=True)
    layer(x).backward(g)
    W, b = layer.weight.detach().numpy().astype(np.float64), layer.bias.detach().numpy().astype(np.float64)
    x64, g64 = x.detach().numpy().astype(np.float64), g.numpy().astype(np.float64)
    with torch.no_grad():
        y = layer(x)
    np.testing.assert_allclose(y.numpy(), x64 @ W.T + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), g64 @ W, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad.numpy(), g64.T @ x64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.bias.grad.numpy(), g64.sum(axis=0), rtol=1e-5, atol=1e-5)
    layer.zero_grad(set_to_none=True)
    layer.requires_grad_(trainable)

"""rlharness.cli: flags checked one by one, bad input as one line and exit code 2, --resume keeps the saved flags.

The end-to-end tests run once per algorithm (the `algo` fixture); the scripts share their flags where they mean
the same.
"""
import math
import subprocess
import sys

import pytest
import torch

from rlharness import cli, memory
from rlharness.errors import TrainingDiverged, UsageError

from conftest import ROOT, dirs, run_in_process


def test_rules():
    assert cli.positive(1e-9) and not cli.positive(0) and not cli.positive(math.inf) and not cli.positive(math.nan)
    assert cli.non_negative(0) and not cli.non_negative(-1e-9) and not cli.non_negative(math.inf)
    assert cli.unit_interval(1) and cli.unit_interval(1e-9) and not cli.unit_interval(0)
    assert not cli.unit_interval(1.01)


def test_run_main_turns_errors_into_one_line_and_an_exit_code(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["main_x.py"])

    def raising(error):
        def main(argv):
            raise error
        return main

    for main, code, line in ((lambda argv: 0, 0, None),
                             (raising(UsageError("bad flag")), 2, "main_x.py: error: bad flag"),
                             (raising(TrainingDiverged("loss is NaN")), 1, "main_x.py: error: loss is NaN"),
                             (raising(KeyboardInterrupt()), 130, "main_x.py: interrupted")):
        with pytest.raises(SystemExit) as exit_info:
            cli.run_main(main, [])
        assert exit_info.value.code == code
        out, err = capsys.readouterr()
        assert out == "" and err.splitlines() == ([line] if line else [])


def test_auto_device_is_the_cpu_until_the_gpu_path_is_measured(monkeypatch):
    """--device auto picks the CPU even where CUDA is present (no committed gpu.md shows the GPU faster yet)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cli.select_device("auto").type == "cpu" and cli.select_device("cpu").type == "cpu"
    monkeypatch.setattr(cli, "AUTO_PICKS_CUDA", True)  # once measured: cuda where present, else the CPU
    assert cli.select_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.select_device("auto").type == "cpu"


def test_help_names_every_field_of_the_config(algo, capsys):
    code, out, _ = run_in_process(algo, ["--help"], capsys)
    assert code == 0
    for name in algo.main.Config.__dataclass_fields__:
        assert f"--{name.replace('_', '-')}" in out


BAD_INPUT = [
    (["--env", "NoSuchEnv-v0"], "unknown environment id 'NoSuchEnv-v0'"),
    (["--env", "CartPole-v1"], "Discrete action space"),
    (["--batch-size", "0"], "--batch-size must be > 0, got 0"),
    (["--episodes", "-3"], "--episodes must be > 0, got -3"),
    (["--tau", "0"], "--tau must be in (0, 1], got 0.0"),
    (["--tau", "1.5"], "--tau must be in (0, 1], got 1.5"),
    (["--gamma", "0"], "--gamma must be in (0, 1], got 0.0"),
    (["--gamma", "1.01"], "--gamma must be in (0, 1], got 1.01"),
    (["--lr-actor=-1e-3"], "--lr-actor must be > 0, got -0.001"),
    (["--lr-critic", "0"], "--lr-critic must be > 0, got 0.0"),
    (["--batch-size", "ten"], "invalid int value: 'ten'"),
    (["--evaluate", "3"], "no saved agent"),
    (["--resume"], "no run to resume in"),
    (["--resume", "--evaluate", "2"], "use one of them"),
    (["--device", "tpu"], "--device must be cpu, cuda, cuda:N or auto, got tpu"),
    (["--device", "cuda:x"], "--device must be cpu, cuda, cuda:N or auto, got cuda:x"),
    (["--device", "cpu", "--cuda-graph", "on"], "--cuda-graph on needs a CUDA device, and this run is on cpu"),
    (["--cuda-graph", "yes"], "argument --cuda-graph: invalid choice: 'yes'"),
    (["--evaluate", "1", "--cuda-graph", "off"], "--cuda-graph is a training flag: it has no effect with --evaluate"),
    (["--seed", "-1"], "--seed must be in [0, 2**32), got -1"),
    (["--seed", str(2**32)], "--seed must be in [0, 2**32), got 4294967296"),
    (["--stop-score", "nan"], "--stop-score must be a number, got nan"),
    (["--buffer-size", "32", "--batch-size", "64"], "--buffer-size 32 is smaller than --batch-size 64: learn() "
                                                     "would never find a batch to sample"),
    # more memory than any machine has (LunarLander: 8 + 2 + 1 + 8 + 1 float32 a transition)
    (["--buffer-size", "100000000000"], "--buffer-size 100000000000 needs 7.3 TiB of memory for the replay buffer "
                                        "(80 bytes a transition), and "),
    (["--fc1-dims", "1000000", "--fc2-dims", "1000000"], "--fc1-dims 1000000 and --fc2-dims 1000000 need 50.9 TiB "
                                                         "of memory for the networks"),
    # a flag given where it has no effect
    (["--evaluate", "1", "--batch-size", "64"], "--batch-size is a training flag: it has no effect with --evaluate"),
    (["--evaluate", "1", "--episodes", "5"], "--episodes is a training flag: it has no effect with --evaluate"),
    (["--evaluate", "1", "--fc1-dims", "64"], "--fc1-dims is a training flag: it has no effect with --evaluate"),
    (["--evaluate", "1", "--save-buffer"], "--save-buffer is a training flag: it has no effect with --evaluate"),
    (["--gif"], "--gif works with --evaluate N only"),
    (["--no-render"], "--render works with --evaluate N only"),
    (["--lr-actor", "1e-3", "--evaluate=2", "--seed", "1"], "--lr-actor is a training flag"),
    # flags that matter in evaluation pass their checks (and the run then finds nothing saved)
    (["--evaluate", "1", "--seed", "5", "--threads", "1", "--device", "cpu", "--env", "LunarLanderContinuous-v2"],
     "no saved agent"),
]
ONLY = {"sac": [(["--alpha", "-1"], "--alpha must be 'auto' or a number >= 0, got -1"),
                (["--critics", "3"], "invalid choice: 3"),
                (["--alpha", "0.2", "--critics", "1", "--lr-alpha", "1e-3"],
                 "--lr-alpha has no effect unless --alpha auto (it is 0.2)"),
                (["--target-entropy", "low"], "--target-entropy must be 'auto' or a number, got low"),
                (["--target-entropy", "inf"], "--target-entropy must be 'auto' or a number, got inf"),
                (["--alpha", "0.2", "--target-entropy", "-1"],
                 "--target-entropy has no effect unless --alpha auto (it is 0.2)"),
                (["--alpha=-0.2"], "--alpha must be 'auto' or a number >= 0, got -0.2"),
                (["--update-every", "0"], "--update-every must be > 0, got 0"),
                (["--alpha", "0.2", "--lr-alpha", "1e-3"], "--lr-alpha has no effect unless --alpha auto (it is 0.2)")],
        "ddpg": [(["--noise", "pink"], "invalid choice: 'pink'"),
                 (["--sigma", "0"], "--sigma must be > 0, got 0.0"),
                 (["--critic-weight-decay=-0.01"], "--critic-weight-decay must be >= 0, got -0.01"),
                 (["--noise", "gaussian", "--theta", "0.3"],
                  "--theta has no effect unless --noise ou (it is gaussian)"),
                 (["--dt", "0.1", "--noise", "gaussian"], "--dt has no effect unless --noise ou (it is gaussian)"),
                 (["--noise", "none", "--sigma", "0.2"],
                  "--sigma has no effect unless --noise ou or gaussian (it is none)")]}


def check_bad_input(algo, tmp_path, capsys, argv, message):
    """One line on stderr naming the problem, exit code 2, and the earlier run's files untouched."""
    chkpt = tmp_path / "tmp"
    (chkpt / "latest").mkdir(parents=True, exist_ok=True)
    sentinel = chkpt / "latest" / "actor.pt"
    sentinel.write_bytes(b"an earlier run's agent")
    code, out, err = run_in_process(algo, [*argv, "--chkpt-dir", str(chkpt), "--plot-dir", str(tmp_path / "p")],
                                    capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert sentinel.read_bytes() == b"an earlier run's agent"
    assert sorted(p.name for p in chkpt.rglob("*")) == ["actor.pt", "latest"]


@pytest.mark.parametrize("argv,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(algo, tmp_path, capsys, argv, message):
    check_bad_input(algo, tmp_path, capsys, argv, message)


def test_bad_values_of_the_algorithms_own_flags(algo, tmp_path, capsys):
    for argv, message in ONLY[algo.name]:
        check_bad_input(algo, tmp_path, capsys, argv, message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_is_a_usage_error(algo, tmp_path, capsys, device):
    code, _, err = run_in_process(algo, ["--device", device, *dirs(tmp_path)], capsys)
    assert code == 2 and f"--device {device} was asked for, but no CUDA device is available" in err


def test_cuda_n_picks_the_nth_gpu_and_names_the_ones_there_are(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert cli.select_device("cuda:1") == torch.device("cuda:1")
    assert cli.select_device("cuda") == torch.device("cuda")
    with pytest.raises(UsageError, match=r"--device cuda:2: there is no such GPU; this machine has 2 \(cuda:0 to "
                                         r"cuda:1\)"):
        cli.select_device("cuda:2")


def test_help_names_cuda_n(algo, capsys):
    assert "cuda:N" in run_in_process(algo, ["--help"], capsys)[1]


def test_defaults_never_count_as_given(algo):
    """Only what is on the command line can be refused for having no effect, in either spelling."""
    fields = algo.main.Config
    assert cli.given_flags(fields, ["--evaluate", "3"]) == {"evaluate"}
    assert cli.given_flags(fields, ["--batch-size=64", "--no-gif", "--seed", "2"]) == {"batch_size", "gif", "seed"}


def test_bad_input_in_a_real_process_prints_no_traceback(algo, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / algo.folder / f"{algo.script}.py"), "--env",
                             "NoSuchEnv-v0", *dirs(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{algo.script}.py: error: unknown environment id")
    assert not list(tmp_path.iterdir())


def test_resume_refuses_changed_algorithm_flags(algo, tmp_path, capsys):
    argv = [*algo.small, *dirs(tmp_path)]
    assert run_in_process(algo, ["--env", "Pendulum-v1", "--max-steps", "50", *argv], capsys)[0] == 0
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    for flags, message in ((["--gamma", "0.9"], "--gamma 0.9 differs from the resumed run's 0.99"),
                           (["--env", "LunarLanderContinuous-v2"], "--env LunarLanderContinuous-v2 differs from "
                                                                   "the resumed run's Pendulum-v1")):
        code, out, err = run_in_process(algo, ["--resume", *flags, *argv], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


def test_a_buffer_larger_than_the_memory_there_is_is_refused_before_it_is_allocated(algo, tmp_path, capsys,
                                                                                    monkeypatch):
    """With 100 MiB available: the default buffer (1,000,000 x 80 bytes on LunarLander) fits, twice that or the
    default with --save-buffer (saved through memory) does not, and is refused before any buffer is built."""
    monkeypatch.setattr(memory, "available_memory", lambda device: (100 * 2**20, "MemAvailable in /proc/meminfo"))

    class Built(Exception):
        """make_agent was reached: the check let the run through."""

    def make_agent(*args):
        raise Built

    monkeypatch.setattr(algo.main, "make_agent", make_agent)
    for flags, message in ((["--buffer-size", "2000000"], "--buffer-size 2000000 needs 152.6 MiB of memory for the "
                            "replay buffer (80 bytes a transition), and 100.0 MiB is available (MemAvailable in "
                            "/proc/meminfo): choose a smaller value"),
                           (["--save-buffer"], "--buffer-size 1000000 needs 152.6 MiB of memory for the replay buffer "
                            "(80 bytes a transition, twice with --save-buffer)")):
        code, out, err = run_in_process(algo, [*flags, *dirs(tmp_path)], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(Built):  # the default buffer fits
        algo.main.main(dirs(tmp_path))


def test_available_memory_reads_the_machine():
    free, source = memory.available_memory(torch.device("cpu"))
    assert 0 < free < 2**50 and source

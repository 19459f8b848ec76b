"""The command line: argparse flags generated from a typed config dataclass, each value checked in one line.

Also --resume's flags (the saved run's, with the run-length flags given now), the device, and run_main, which
turns a UsageError into one line and exit code 2 (a diverged loss or a failed write: exit code 1).
"""
import argparse
import dataclasses
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rlharness.checkpoints import read_agent_json, read_training_state
from rlharness.errors import TrainingDiverged, UsageError, WriteFailed
from rlharness.locks import refuse_if_running


def positive(x: float) -> bool:
    """A finite number > 0."""
    return 0 < x < math.inf


def non_negative(x: float) -> bool:
    """A finite number >= 0."""
    return 0 <= x < math.inf


def auto_or_non_negative(value: str) -> bool:
    """'auto' or a finite number >= 0 (SAC's --alpha: 0 is no entropy bonus)."""
    try:
        return value == "auto" or non_negative(float(value))
    except ValueError:
        return False


def auto_or_finite(value: str) -> bool:
    """'auto' or a finite number (SAC's --target-entropy)."""
    try:
        return value == "auto" or math.isfinite(float(value))
    except ValueError:
        return False


def unit_interval(x: float) -> bool:
    """(0, 1], the range of tau and gamma."""
    return 0 < x <= 1


BOTH = ("training", "evaluation")  # a flag that has an effect whether the run trains or evaluates
DEVICE = re.compile(r"cpu|auto|cuda(:\d+)?")

# The rules a flag's value may be held to: the text the error message quotes, and its check.
RULES: dict[str, Callable[[Any], bool]] = {
    "> 0": positive, ">= 0": non_negative, "in (0, 1]": unit_interval, "'auto' or a number >= 0": auto_or_non_negative,
    "'auto' or a number": auto_or_finite,
    "a number": lambda x: not math.isnan(x), "in [0, 2**32)": lambda x: 0 <= x < 2**32,
    "cpu, cuda, cuda:N or auto": lambda x: DEVICE.fullmatch(x) is not None}


def flag(default: Any, help: str, rule: str | None = None, choices: tuple | None = None,
         used_in: tuple[str, ...] = ("training",), needs: str | None = None) -> Any:
    """A config field: its --help text, an optional rule its value must follow (a key of RULES), where it has an
    effect (`used_in` "training" and/or "evaluation", i.e. --evaluate N), and another flag's value it `needs`
    ("--noise ou", or "--noise ou|gaussian" for either). A flag given explicitly where it has no effect is a
    UsageError, never silently ignored."""
    check = RULES[rule] if rule is not None else None
    return dataclasses.field(default=default, metadata=dict(help=help, check=check, rule=rule, choices=choices,
                                                            used_in=used_in, needs=needs))


def _no_effect(cfg: Any, name: str, used_in: tuple[str, ...], needs: str | None) -> str | None:
    """Why flag `name` has no effect with this config (None when it has one)."""
    flag_name = "--" + name.replace("_", "-")
    mode = "evaluation" if getattr(cfg, "evaluate", 0) else "training"
    if mode not in used_in:
        return (f"{flag_name} is a training flag: it has no effect with --evaluate" if mode == "evaluation" else
                f"{flag_name} works with --evaluate N only")
    if needs is not None:  # "--noise ou", or "--noise ou|gaussian" for either value
        other, values = needs[2:].split(" ")
        if (now := str(getattr(cfg, other.replace("-", "_")))) not in values.split("|"):
            return f"{flag_name} has no effect unless --{other} {values.replace('|', ' or ')} (it is {now})"
    return None


def given_flags(config_cls: type, argv: list[str] | None) -> set[str]:
    """The config fields set explicitly on the command line (--batch-size 64, --batch-size=64, --no-gif)."""
    argv = sys.argv[1:] if argv is None else argv
    given = set()
    for f in dataclasses.fields(config_cls):
        name = "--" + f.name.replace("_", "-")
        spellings = (name, "--no-" + name[2:]) if f.type is bool else (name,)
        if any(arg == s or arg.startswith(s + "=") for arg in argv for s in spellings):
            given.add(f.name)
    return given


@dataclasses.dataclass
class RunConfig:
    """The flags of every training script: the env and seed, how long and where it runs, --resume, --evaluate.

    A script's Config subclasses it with its algorithm's hyperparameters and sets chkpt_dir (and plot_dir) beside
    the repository.
    """
    env: str = flag("LunarLanderContinuous-v2", "gym environment id (continuous actions)", used_in=BOTH)
    seed: int = flag(0, "seeds every random stream of the run, each its own: random, numpy, torch, the env, its "
                     "action space, the buffer, the agent's exploration", "in [0, 2**32)", used_in=BOTH)
    episodes: int = flag(1000, "the run's total number of episodes (the lecture's n_games)", "> 0")
    max_steps: int = flag(300_000, "the run's total env-step budget; training stops at whichever limit "
                          "comes first", "> 0")
    stop_score: float = flag(math.inf, "stop once the 100-episode mean reaches this (200 = solved)", "a number")
    eval_every: int = flag(10_000, "evaluate the agent after the first episode and every this many env steps "
                           "(at the next episode's end): best/ keeps the agent with the best evaluation mean", "> 0")
    eval_episodes: int = flag(10, "deterministic episodes per evaluation (on an env of its own: training draws "
                              "nothing from it)", "> 0")
    save_every: int = flag(10, "save latest/ (the state --resume needs) every N episodes: a crash loses at most N",
                           "> 0")
    save_buffer: bool = flag(False, "also save the replay buffer in latest/ (a resumed run then matches an "
                             "uninterrupted one exactly)")
    resume: bool = flag(False, "continue the run saved in latest/: its flags, episode count, scores and RNG states "
                        "(--episodes, --max-steps and other run-length flags may change)")
    device: str = flag("auto", "cpu, cuda, cuda:N (the N-th GPU) or auto (the CPU for now: the CUDA path, with its "
                       "captured update, is not yet measured on a GPU; --device cuda uses it)",
                       "cpu, cuda, cuda:N or auto", used_in=BOTH)
    cuda_graph: str = flag("auto", "on CUDA, replay each update as one captured CUDA graph (about 10x the eager "
                           "GPU update; auto: on with CUDA, off on the CPU)", choices=("auto", "on", "off"))
    threads: int = flag(1, "torch CPU threads (1 is fastest when other work shares the machine)", "> 0",
                        used_in=BOTH)
    evaluate: int = flag(0, "load the saved agent, run N deterministic episodes, train nothing", ">= 0",
                         used_in=BOTH)
    gif: bool = flag(False, "with --evaluate: record the first episode as <plot-dir>/<algorithm>_<env>.gif",
                     used_in=("evaluation",))
    render: bool = flag(False, "with --evaluate: show the episodes in a window (needs a display)",
                        used_in=("evaluation",))
    chkpt_dir: str = flag("tmp", "checkpoint folder (best/ and latest/ inside)", used_in=BOTH)
    plot_dir: str = flag("plots", "folder for the score curves and their CSVs (and --gif)", used_in=BOTH)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print the whole usage block first
        raise UsageError(message)


def parse_config(config_cls: type, argv: list[str] | None, description: str, defaults: dict | None = None) -> Any:
    """Build the flags from `config_cls`'s fields (--batch-size for batch_size) and check each value.

    `defaults` replaces the dataclass defaults for the flags it names (--resume uses the saved run's values).
    """
    parser = _OneLineParser(description=description, allow_abbrev=False,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(config_cls):
        name = "--" + f.name.replace("_", "-")
        meta = f.metadata
        if f.type is bool:
            parser.add_argument(name, action=argparse.BooleanOptionalAction, default=f.default, help=meta["help"])
        else:
            parser.add_argument(name, type=f.type, default=f.default, help=meta["help"], choices=meta.get("choices"))
    if defaults:
        parser.set_defaults(**{f.name: defaults[f.name] for f in dataclasses.fields(config_cls) if f.name in defaults})
    cfg = config_cls(**vars(parser.parse_args(argv)))
    for f in dataclasses.fields(config_cls):
        value, check = getattr(cfg, f.name), f.metadata.get("check")
        if check is not None and not check(value):
            raise UsageError(f"--{f.name.replace('_', '-')} must be {f.metadata['rule']}, got {value}")
    if getattr(cfg, "resume", False) and getattr(cfg, "evaluate", 0):
        raise UsageError("--resume continues training and --evaluate trains nothing: use one of them")
    given = given_flags(config_cls, argv)
    for f in dataclasses.fields(config_cls):
        if f.name in given and (why := _no_effect(cfg, f.name, f.metadata["used_in"], f.metadata["needs"])):
            raise UsageError(why)
    if not getattr(cfg, "evaluate", 0) and getattr(cfg, "buffer_size", math.inf) < getattr(cfg, "batch_size", 0):
        raise UsageError(f"--buffer-size {cfg.buffer_size} is smaller than --batch-size {cfg.batch_size}: "
                         "learn() would never find a batch to sample")
    return cfg


# Flags a resumed run may change: how long it runs and where it runs. Every other flag keeps the saved value.
RUN_FLAGS = ("episodes", "max_steps", "stop_score", "save_every", "save_buffer", "device", "cuda_graph", "threads",
             "plot_dir")
NOT_RESTORED = ("resume", "evaluate", "gif", "render", "chkpt_dir")


def read_config(config_cls: type, argv: list[str] | None, description: str, algorithm: str) -> Any:
    """The run's config from the command line; with --resume, the saved run's flags with the RUN_FLAGS given now.

    On --resume, a run of another algorithm (agent.json, or flags this config lacks) or a changed algorithm flag
    is a UsageError. A training run on a folder that another training run holds is refused first, before latest/
    (which that run may be rewriting) is read.
    """
    cfg = parse_config(config_cls, argv, description)
    if not getattr(cfg, "evaluate", 0):
        refuse_if_running(Path(cfg.chkpt_dir))
    if not getattr(cfg, "resume", False):
        return cfg
    latest = Path(cfg.chkpt_dir) / "latest"
    saved = read_training_state(latest)["config"]
    read_agent_json(latest, algorithm)
    saved = {name: value for name, value in saved.items() if name not in NOT_RESTORED}
    if foreign := sorted(set(saved) - {f.name for f in dataclasses.fields(config_cls)}):
        raise UsageError(f"the run in {latest} is not a {algorithm!r} run (it has flags {algorithm} lacks: "
                         f"{', '.join('--' + name.replace('_', '-') for name in foreign)})")
    cfg = parse_config(config_cls, argv, description, defaults=saved)
    for name, value in saved.items():
        if name not in RUN_FLAGS and hasattr(cfg, name) and getattr(cfg, name) != value:
            raise UsageError(f"--{name.replace('_', '-')} {getattr(cfg, name)} differs from the resumed run's "
                             f"{value}: a resumed run keeps its settings (start a fresh run to change them)")
    return cfg


# What --device auto picks where a GPU is present. The CPU until benchmarks/results/gpu.md (benchmarks/gpu.py, run
# on a GPU machine) shows the captured GPU update faster than a CPU core: the GPU path is built and tested on the
# CPU, but not yet measured on a GPU here, and an eager GPU update measured slower than one CPU core.
AUTO_PICKS_CUDA = False


def select_device(name: str) -> torch.device:
    """'auto' picks the CPU (cuda once AUTO_PICKS_CUDA); cuda or cuda:N (the N-th GPU) must exist, else a
    UsageError."""
    if name == "auto":
        return torch.device("cuda" if AUTO_PICKS_CUDA and torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name} was asked for, but no CUDA device is available (use cpu or auto)")
        index, count = int(name.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            raise UsageError(f"--device {name}: there is no such GPU; this machine has {count} "
                             f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return torch.device(name)


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a script's main(); a UsageError is one line on stderr and exit 2, divergence or a failed write exit 1,
    Ctrl-C 130."""
    try:
        code = main(argv)
    except (UsageError, TrainingDiverged, WriteFailed) as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        code = 2 if isinstance(e, UsageError) else 1
    except KeyboardInterrupt:  # a second Ctrl-C while saving: the files already written are complete
        print(f"{Path(sys.argv[0]).name}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)

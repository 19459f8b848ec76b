"""The command line: argparse flags generated from a typed config dataclass, each value checked in one line.

Also --resume's flags (the saved run's, with the run-length flags given now), the device, and run_main, which
turns a UsageError into one line and exit code 2.
"""
import argparse
import dataclasses
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rlharness.checkpoints import read_training_state
from rlharness.errors import TrainingDiverged, UsageError


def positive(x: float) -> bool:
    """A finite number > 0."""
    return 0 < x < math.inf


def non_negative(x: float) -> bool:
    """A finite number >= 0."""
    return 0 <= x < math.inf


def auto_or_positive(value: str) -> bool:
    """'auto' or a finite number > 0 (SAC's --alpha)."""
    try:
        return value == "auto" or positive(float(value))
    except ValueError:
        return False


def unit_interval(x: float) -> bool:
    """(0, 1], the range of tau and gamma."""
    return 0 < x <= 1


# The rules a flag's value may be held to: the text the error message quotes, and its check.
RULES: dict[str, Callable[[Any], bool]] = {"> 0": positive, ">= 0": non_negative, "in (0, 1]": unit_interval,
                                          "'auto' or a number > 0": auto_or_positive}


def flag(default: Any, help: str, rule: str | None = None, choices: tuple | None = None) -> Any:
    """A config field with its --help text and an optional rule its value must follow (a key of RULES)."""
    check = RULES[rule] if rule is not None else None
    return dataclasses.field(default=default, metadata=dict(help=help, check=check, rule=rule, choices=choices))


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print the whole usage block first
        raise UsageError(message)


def parse_config(config_cls: type, argv: list[str] | None, description: str, defaults: dict | None = None) -> Any:
    """Build the flags from `config_cls`'s fields (--batch-size for batch_size) and check each value.

    `defaults` replaces the dataclass defaults for the flags it names (--resume uses the saved run's values).
    """
    parser = _OneLineParser(description=description,
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
    return cfg


# Flags a resumed run may change: how long it runs and where it runs. Every other flag keeps the saved value.
RUN_FLAGS = ("episodes", "max_steps", "stop_score", "save_every", "save_buffer", "device", "threads", "plot_dir")
NOT_RESTORED = ("resume", "evaluate", "gif", "render", "chkpt_dir")


def read_config(config_cls: type, argv: list[str] | None, description: str) -> Any:
    """The run's config from the command line; with --resume, the saved run's flags with the RUN_FLAGS given now.

    A changed algorithm flag on --resume is a UsageError.
    """
    cfg = parse_config(config_cls, argv, description)
    if not getattr(cfg, "resume", False):
        return cfg
    saved = read_training_state(Path(cfg.chkpt_dir) / "latest")["config"]
    saved = {name: value for name, value in saved.items() if name not in NOT_RESTORED}
    cfg = parse_config(config_cls, argv, description, defaults=saved)
    for name, value in saved.items():
        if name not in RUN_FLAGS and hasattr(cfg, name) and getattr(cfg, name) != value:
            raise UsageError(f"--{name.replace('_', '-')} {getattr(cfg, name)} differs from the resumed run's "
                             f"{value}: a resumed run keeps its settings (start a fresh run to change them)")
    return cfg


def select_device(name: str) -> torch.device:
    """'auto' picks cuda when present, else cpu; asking for cuda without it is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available (use cpu or auto)")
    return torch.device(name)


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a script's main(); a UsageError is one line on stderr and exit 2, divergence exit 1, Ctrl-C 130."""
    try:
        code = main(argv)
    except UsageError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        code = 2
    except TrainingDiverged as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:  # a second Ctrl-C while saving: the files already written are complete
        print(f"{Path(sys.argv[0]).name}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)

"""The memory a training run will need, checked against the memory there is before anything is allocated.

A replay buffer larger than the machine's memory would otherwise fail as a numpy traceback ("Unable to allocate
2.91 TiB") or, as numpy's zeros are only reserved, be killed by the OS once the buffer fills, hours in.
"""
import os
from pathlib import Path
from typing import Any

import torch

from rlharness.errors import UsageError

FLOAT = 4  # bytes: buffers and networks are float32
# Copies of one network's parameters an agent holds at most: five networks (twin critics, an actor, two targets),
# three of them trained, each with its gradient and Adam's two moments: 3 * 4 + 2
NETWORK_COPIES = 14


def available_memory(device: torch.device) -> tuple[int, str] | None:
    """(bytes free for this run, where the number comes from), or None where it cannot be known.

    On the CPU: MemAvailable from /proc/meminfo, lowered to what a cgroup limit (a container) leaves, else the
    free physical pages; on CUDA: the device's free memory.
    """
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], f"free on {device}"
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        free, source = int(meminfo["MemAvailable"].split()[0]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, KeyError, ValueError):
        try:  # no /proc (macOS): the free physical pages, where the OS tells them
            free, source = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free physical memory"
        except (OSError, ValueError):
            return None
    try:  # cgroup v2: memory.max is "max" when unlimited
        cgroup = Path("/sys/fs/cgroup")
        left = int((cgroup / "memory.max").read_text()) - int((cgroup / "memory.current").read_text())
        if left < free:
            free, source = left, "left under the cgroup's memory.max"
    except (OSError, ValueError):
        pass
    return free, source


def human(n: float) -> str:
    """Bytes in binary units, as numpy writes them: 7.3 TiB."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def check_memory(cfg: Any, sizes: dict, device: torch.device) -> None:
    """Refuse (UsageError, one line naming the flag) a replay buffer or networks larger than the memory there is.

    The replay buffer stores (s, a, r, s', d) in float32 for cfg.buffer_size transitions, twice over on the CPU
    with --save-buffer (a save serialises it in memory before writing). The networks are estimated from
    fc1_dims and fc2_dims: NETWORK_COPIES times the parameters of the larger of actor and critic.
    """
    free = available_memory(device)
    if free is None:
        return
    obs, n_actions, fc1, fc2 = sizes["input_dims"], sizes["n_actions"], cfg.fc1_dims, cfg.fc2_dims
    transition = FLOAT * (2 * obs + n_actions + 2)
    saved_twice = 2 if cfg.save_buffer and device.type != "cuda" else 1
    network = (obs + n_actions + 1) * fc1 + (fc1 + 1) * fc2 + (fc2 + 1) * 2 * n_actions
    needs = {f"--buffer-size {cfg.buffer_size}": (cfg.buffer_size * transition * saved_twice,
                                                  f"the replay buffer ({transition} bytes a transition"
                                                  + (", twice with --save-buffer)" if saved_twice == 2 else ")")),
             f"--fc1-dims {fc1} and --fc2-dims {fc2}": (NETWORK_COPIES * FLOAT * network,
                                                        "the networks, their gradients and Adam's moments")}
    total = sum(n for n, _ in needs.values())
    if total > free[0]:
        flag, (n, what) = max(needs.items(), key=lambda item: item[1][0])
        verb = "need" if " and " in flag else "needs"
        in_all = f"; {human(total)} in all" if total > 1.05 * n else ""
        raise UsageError(f"{flag} {verb} {human(n)} of memory for {what}{in_all}, and {human(free[0])} is "
                         f"available ({free[1]}): choose a smaller value")

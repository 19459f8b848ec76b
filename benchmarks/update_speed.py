"""Updates per second of our DDPG and SAC learn(), with each update's FLOPs and the machine's matmul floor.

    python benchmarks/update_speed.py            # the full table (a few minutes)
    python benchmarks/update_speed.py --quick    # fewer repeats, under a minute

Writes benchmarks/results/update_speed.csv and .md. Runs alternate between configurations and the figure is
the median over repeats, so a machine that gets busier mid-run skews every configuration alike.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import load_folder  # noqa: E402  (imports DDPG/ and SAC/ modules side by side)

CONFIGS = [  # algo, hidden sizes, batch
    ("ddpg", (256, 256), 128), ("ddpg", (400, 300), 64), ("ddpg", (400, 300), 256),
    ("sac", (128, 128), 128), ("sac", (128, 128), 256), ("sac", (256, 256), 256), ("sac", (400, 300), 256),
]


def make_agent(algo: str, sizes: tuple[int, int], batch: int):
    module = load_folder("DDPG", ("ddpg_torch",)).ddpg_torch if algo == "ddpg" else \
        load_folder("SAC", ("sac_torch",)).sac_torch
    agent = module.Agent(input_dims=8, n_actions=2, action_low=-np.ones(2), action_high=np.ones(2),
                         fc1_dims=sizes[0], fc2_dims=sizes[1], batch_size=batch, max_size=20_000, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(5_000):
        agent.remember(rng.normal(size=8), rng.uniform(-1, 1, 2), rng.normal(), rng.normal(size=8), False)
    return agent


def update_flops(agent) -> int:
    with FlopCounterMode(display=False) as counter:
        agent.learn()
    return counter.get_total_flops()


def matmul_gflops(seconds: float = 1.0) -> float:
    """The machine's fp32 matmul rate at these networks' sizes: the floor an update cannot beat."""
    a, b = torch.randn(256, 256), torch.randn(256, 400)
    for _ in range(20):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            a @ b
        n += 50
    return 2 * 256 * 256 * 400 * n / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats of 30 updates (default 7 of 100)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    repeats, updates = (3, 30) if args.quick else (7, 100)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = matmul_gflops(0.3 if args.quick else 1.0)
        agents = {c: make_agent(*c) for c in CONFIGS}
        times = {c: [] for c in CONFIGS}
        for agent in agents.values():
            for _ in range(10):
                agent.learn()
        for _ in range(repeats):  # alternate configurations within each repeat
            for c, agent in agents.items():
                start = time.perf_counter()
                for _ in range(updates):
                    agent.learn()
                times[c].append((time.perf_counter() - start) / updates)
        for c, agent in agents.items():
            seconds = float(np.median(times[c]))
            flops = update_flops(agent)
            floor = flops / (peak * 1e9)
            rows.append(dict(algo=c[0], hidden=f"{c[1][0]}x{c[1][1]}", batch=c[2], threads=threads,
                             ms_per_update=seconds * 1e3, updates_per_s=1 / seconds, mflop=flops / 1e6,
                             matmul_gflops=peak, x_floor=seconds / floor))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0])
    (out / "update_speed.csv").write_text("\n".join([",".join(keys)] + [
        ",".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys) for r in rows]) + "\n")
    lines = ["| algo | hidden | batch | threads | ms/update | updates/s | MFLOP/update | matmul GFLOP/s | x floor |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['algo']} | {r['hidden']} | {r['batch']} | {r['threads']} | {r['ms_per_update']:.2f} | "
              f"{r['updates_per_s']:.0f} | {r['mflop']:.0f} | {r['matmul_gflops']:.0f} | {r['x_floor']:.2f} |"
              for r in rows]
    (out / "update_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Updates per second of our DDPG and SAC learn() against Stable-Baselines3's train(), with FLOPs and the floor.

    python benchmarks/update_speed.py                      # the full table, 1 and 2 threads, 3 runs (15 minutes)
    python benchmarks/update_speed.py --quick              # 3 repeats of 30 updates, under a minute
    python benchmarks/update_speed.py --threads 1 --repeats 1 --updates 3 --runs 1   # a smoke run
    python benchmarks/update_speed.py --device cuda        # on a GPU: eager learn() against the CUDA graph

Both sides update networks of the same sizes from the same batch size on LunarLander's spaces (8-dim
observations, 2-dim actions in [-1, 1]), each from a replay buffer of 5,000 random transitions: our Agent's
learn() against SB3's `model.train(gradient_steps=K, batch_size=B)` (SB3's SAC, and its DDPG, which is TD3 with
one critic, no policy delay and no target noise). Within each repeat every configuration runs once, ours and
SB3's alternating (which goes first alternates too), and each figure is the median over repeats, so a machine
that gets busier mid-run skews every configuration alike. The FLOPs of one update come from
torch.utils.flop_counter; the floor is those FLOPs at the machine's fp32 matmul rate, timed in the same run.
"Matmuls alone" replays the update's own matrix products (recorded with their shapes and layouts, backward
included) back to back on fresh tensors: what the update would cost if nothing else ran.

SB3 is a benchmark-only dependency (`pip install -r requirements.txt -r benchmarks/requirements.txt`); without
it the script times our side only and says so. Writes benchmarks/results/update_speed.csv and .md.

With --device cuda (or cuda:N) it times our learn() on that GPU instead, three ways, at GPU_CONFIGS: eager (each
operation launched from Python), replayed as one CUDA graph (rlharness.gpu, what training on CUDA does), and on
one CPU thread of the same host for comparison; it writes update_speed_cuda.csv and .md. `--device cpu` runs
that mode on the CPU without the graph rows (a dry run of the GPU benchmark).
"""
import argparse
import contextlib
import copy
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from time_to_solve import invocation, script_module
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent

OBS_DIMS, N_ACTIONS, FILL = 8, 2, 5_000
CONFIGS = [  # algo, hidden sizes, batch, compared with SB3 (the issue's sizes) or ours only (our defaults)
    ("ddpg", (256, 256), 128, False), ("ddpg", (400, 300), 64, True), ("ddpg", (400, 300), 256, True),
    ("sac", (128, 128), 128, False), ("sac", (256, 256), 256, True), ("sac", (400, 300), 256, True),
]


def agent_class(algo: str) -> type:
    """DDPG/ddpg_torch.Agent or SAC/sac_torch.Agent."""
    return script_module(algo, f"{algo}_torch").Agent


def make_agent(algo: str, sizes: tuple[int, int], batch: int, device: torch.device | str = "cpu"):
    """Our Agent at these sizes on `device`, its replay buffer filled with FILL random transitions."""
    agent = agent_class(algo)(input_dims=OBS_DIMS, n_actions=N_ACTIONS, action_low=-np.ones(N_ACTIONS),
                         action_high=np.ones(N_ACTIONS), fc1_dims=sizes[0], fc2_dims=sizes[1],
                         batch_size=batch, max_size=20_000, device=device, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(FILL):
        agent.remember(rng.normal(size=OBS_DIMS), rng.uniform(-1, 1, N_ACTIONS), rng.normal(),
                       rng.normal(size=OBS_DIMS), False)
    return agent


def sb3_version() -> str | None:
    """Stable-Baselines3's version, or None when it is not installed (it is a benchmark-only dependency)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # SB3 imports gym if present: it prints a notice
            import stable_baselines3
    except ImportError:
        return None
    return stable_baselines3.__version__


def make_sb3(algo: str, sizes: tuple[int, int], batch: int):
    """SB3's SAC or DDPG with net_arch `sizes` for actor and critics, its replay buffer filled like ours."""
    import gymnasium
    from stable_baselines3 import DDPG, SAC
    from stable_baselines3.common.logger import Logger

    class Spaces(gymnasium.Env):
        """LunarLanderContinuous's spaces; train() never steps the env."""
        observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (OBS_DIMS,), np.float32)
        action_space = gymnasium.spaces.Box(-1.0, 1.0, (N_ACTIONS,), np.float32)

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            return np.zeros(OBS_DIMS, np.float32), {}

        def step(self, action):
            return np.zeros(OBS_DIMS, np.float32), 0.0, False, False, {}

    cls = SAC if algo == "sac" else DDPG
    model = cls("MlpPolicy", Spaces(), policy_kwargs=dict(net_arch=list(sizes)), batch_size=batch,
                buffer_size=20_000, learning_starts=0, seed=0, device="cpu")
    model.set_logger(Logger(None, []))  # train() records its losses; this logger writes nowhere
    rng = np.random.default_rng(0)
    for _ in range(FILL):
        model.replay_buffer.add(rng.normal(size=(1, OBS_DIMS)), rng.normal(size=(1, OBS_DIMS)),
                                rng.uniform(-1, 1, (1, N_ACTIONS)), np.array([rng.normal()]), np.array([False]),
                                [{}])
    return model


def update_flops(update: Callable[[], object]) -> int:
    """FLOPs of one call of `update` (one learn() or one train(gradient_steps=1))."""
    with FlopCounterMode(display=False) as counter:
        update()
    return counter.get_total_flops()


MATMULS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default,
           torch.ops.aten.baddbmm.default}


class MatmulRecorder(TorchDispatchMode):
    """Records each matrix product that runs under it (backward passes included): operator, argument shapes and
    strides (layouts matter to MKL's speed)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in MATMULS:
            self.calls.append((func, [(a.shape, a.stride()) if isinstance(a, torch.Tensor) else a for a in args],
                               dict(kwargs or {})))
        return func(*args, **(kwargs or {}))


def matmul_replay(update: Callable[[], object]) -> Callable[[], None]:
    """The matrix products of one call of `update`, alone: a function that runs each of them once on tensors of
    the same shapes and layouts, with nothing between them. Its time is the update's matmul work at the rate
    these shapes reach here; the rest of an update's time is everything else."""
    with MatmulRecorder() as recorder:
        update()
    calls = []
    for func, specs, kwargs in recorder.calls:
        args = []
        for spec in specs:
            if isinstance(spec, tuple):
                shape, stride = spec
                storage = 1 + sum((n - 1) * st for n, st in zip(shape, stride))
                args.append(torch.randn(storage).as_strided(shape, stride))
            else:
                args.append(spec)
        calls.append((func, args, kwargs))

    def replay() -> None:
        for func, args, kwargs in calls:
            func(*args, **kwargs)
    return replay


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


def measure(threads: int, repeats: int, updates: int, with_sb3: bool, matmul_seconds: float) -> list[dict]:
    """One row per configuration at this thread count: median ms per update for each side, FLOPs, floor."""
    torch.set_num_threads(threads)
    peak = matmul_gflops(matmul_seconds)
    runners: dict[tuple, dict[str, Callable[[int], object]]] = {}
    flops: dict[tuple, dict[str, int]] = {}
    replays: dict[tuple, dict[str, Callable[[], None]]] = {}
    for c in CONFIGS:
        algo, sizes, batch, compare = c
        agent = make_agent(algo, sizes, batch)
        runners[c] = {"ours": lambda k, agent=agent: [agent.learn() for _ in range(k)]}
        if with_sb3 and compare:
            model = make_sb3(algo, sizes, batch)
            runners[c]["sb3"] = lambda k, model=model, batch=batch: model.train(gradient_steps=k, batch_size=batch)
        flops[c] = {side: update_flops(lambda run=run: run(1)) for side, run in runners[c].items()}
        replays[c] = {side: matmul_replay(lambda run=run: run(1)) for side, run in runners[c].items()}
    torch.set_num_threads(threads)  # in case building a model changed it
    for sides in runners.values():  # warm-up: first calls allocate and fill caches
        for run in sides.values():
            run(5)
    times: dict[tuple, dict[str, list[float]]] = {c: {side: [] for side in sides} for c, sides in runners.items()}
    matmul_times = copy.deepcopy(times)
    for i in range(repeats):
        for c, sides in runners.items():
            order = list(sides) if i % 2 == 0 else list(sides)[::-1]  # alternate which side goes first
            for side in order:
                start = time.perf_counter()
                sides[side](updates)
                times[c][side].append((time.perf_counter() - start) / updates)
                start = time.perf_counter()
                for _ in range(updates):
                    replays[c][side]()
                matmul_times[c][side].append((time.perf_counter() - start) / updates)
    rows = []
    for c in CONFIGS:
        algo, sizes, batch, compare = c
        row: dict = dict(algo=algo, hidden=f"{sizes[0]}x{sizes[1]}", batch=batch, threads=threads,
                         matmul_gflops=peak)
        for side in ("ours", "sb3"):
            if side in times[c]:
                seconds = float(np.median(times[c][side]))
                row[f"{side}_ms"] = seconds * 1e3
                row[f"{side}_updates_per_s"] = 1 / seconds
                row[f"{side}_mflop"] = flops[c][side] / 1e6
                row[f"{side}_x_floor"] = seconds / (flops[c][side] / (peak * 1e9))
                row[f"{side}_matmul_ms"] = float(np.median(matmul_times[c][side])) * 1e3
            else:
                row.update({f"{side}_{k}": None for k in ("ms", "updates_per_s", "mflop", "x_floor", "matmul_ms")})
        row["ours_vs_sb3"] = row["sb3_ms"] / row["ours_ms"] if row["sb3_ms"] else None
        row["compared"] = "sb3" if compare else "ours only"
        rows.append(row)
    return rows


GPU_CONFIGS = [("sac", (128, 128), 128), ("sac", (256, 256), 256), ("ddpg", (256, 256), 128)]


def timed_updates(update: Callable[[], object], updates: int, device: torch.device) -> float:
    """Seconds per update over `updates` calls, waiting for the device to finish before and after."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(updates):
        update()
    sync()
    return (time.perf_counter() - start) / updates


def measure_device(device: torch.device, repeats: int, updates: int) -> list[dict]:
    """Updates per second of learn() on `device`, eager and (on CUDA) replayed as a CUDA graph, and on one CPU
    thread; the median over repeats, the three alternated within each repeat."""
    from rlharness.gpu import graphed_learn

    torch.set_num_threads(1)
    rows = []
    for algo, sizes, batch in GPU_CONFIGS:
        ways = {"cpu1": make_agent(algo, sizes, batch).learn, "eager": make_agent(algo, sizes, batch, device).learn}
        if device.type == "cuda":
            ways["graph"] = graphed_learn(make_agent(algo, sizes, batch, device), "on")
        for update in ways.values():  # warm-up (the graph is captured here)
            for _ in range(10):
                update()
        times: dict[str, list[float]] = {way: [] for way in ways}
        for i in range(repeats):
            for way in (list(ways) if i % 2 == 0 else list(ways)[::-1]):
                times[way].append(timed_updates(ways[way], updates, device if way != "cpu1" else torch.device("cpu")))
        rate = {way: 1 / float(np.median(t)) for way, t in times.items()}
        spread = {way: (1 / max(t), 1 / min(t)) for way, t in times.items()}
        rows.append(dict(algo=algo, hidden=f"{sizes[0]}x{sizes[1]}", batch=batch, device=str(device),
                         eager_per_s=rate["eager"], graph_per_s=rate.get("graph"), cpu1_per_s=rate["cpu1"],
                         graph_x_eager=rate["graph"] / rate["eager"] if "graph" in rate else None,
                         graph_x_cpu1=rate["graph"] / rate["cpu1"] if "graph" in rate else None,
                         eager_range=spread["eager"], graph_range=spread.get("graph"), cpu1_range=spread["cpu1"]))
    return rows


def device_markdown(rows: list[dict], header_lines: list[str]) -> str:
    """The GPU table: updates per second, median (lowest-highest over the repeats)."""
    def cell(r: dict, way: str) -> str:
        if r[f"{way}_per_s"] is None:
            return "not run (no CUDA)"
        low, high = r[f"{way}_range"]
        return f"{r[f'{way}_per_s']:,.0f} ({low:,.0f}-{high:,.0f})"
    lines = header_lines + [
        "", "| algo | hidden | batch | eager on the GPU | CUDA graph | one CPU thread | graph / eager | graph / CPU |",
        "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['algo']} | {r['hidden']} | {r['batch']} | {cell(r, 'eager')} | {cell(r, 'graph')} | "
                     f"{cell(r, 'cpu1')} | {fmt(r['graph_x_eager'], '.1f')}{'x' if r['graph_x_eager'] else ''} | "
                     f"{fmt(r['graph_x_cpu1'], '.1f')}{'x' if r['graph_x_cpu1'] else ''} |")
    return "\n".join(lines) + "\n"


def device_main(args: argparse.Namespace, command: str) -> None:
    """--device: the GPU table (eager, CUDA graph, one CPU thread), update_speed_cuda.csv and .md."""
    from rlharness.cli import select_device

    device = select_device(args.device)
    repeats, updates = args.repeats or (3 if args.quick else 7), args.updates or (50 if args.quick else 300)
    rows = measure_device(device, repeats, updates)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU (a dry run on the CPU)"
    header = [f"Our learn() on {name}, updates per second: median over {repeats} repeats of {updates} updates "
              f"(lowest-highest in brackets), the three ways alternated; torch {torch.__version__}.",
              "", f"command: `{command}`"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "update_speed_cuda.csv", rows, [k for k in rows[0] if not k.endswith("_range")])
    text = device_markdown(rows, header)
    (out / "update_speed_cuda.md").write_text(text)
    print(text, end="")


def write_rows(path: Path, rows: list[dict], keys: list[str]) -> None:
    """The rows' `keys` as a CSV: floats to 4 significant digits, None as an empty cell."""
    path.write_text("\n".join([",".join(keys)] + [
        ",".join("" if r[k] is None else f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
        for r in rows]) + "\n")


def fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def markdown(rows: list[dict], header_lines: list[str]) -> str:
    """The table: one row per configuration and thread count; ours/SB3 > 1 means ours is faster."""
    lines = header_lines + [
        "", "| algo | hidden | batch | threads | ours ms | SB3 ms | ours/SB3 updates/s | ours MFLOP | SB3 MFLOP "
        "| matmul GFLOP/s | ours x floor | SB3 x floor | ours: matmuls alone ms | SB3: matmuls alone ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sb3_ms = fmt(r["sb3_ms"], ".2f") if r["compared"] == "sb3" else "ours only"
        ratio = fmt(r["ours_vs_sb3"], ".2f") + ("x" if r["ours_vs_sb3"] else "")
        if r["ours_vs_sb3"] and r.get("runs", 1) > 1:
            ratio += f" ({r['ours_vs_sb3_min']:.2f}-{r['ours_vs_sb3_max']:.2f})"
        lines.append(f"| {r['algo']} | {r['hidden']} | {r['batch']} | {r['threads']} | {r['ours_ms']:.2f} | "
                     f"{sb3_ms} | {ratio} | {r['ours_mflop']:.0f} | {fmt(r['sb3_mflop'], '.0f')} | "
                     f"{r['matmul_gflops']:.0f} | {r['ours_x_floor']:.2f} | {fmt(r['sb3_x_floor'], '.2f')} | "
                     f"{r['ours_matmul_ms']:.2f} | {fmt(r['sb3_matmul_ms'], '.2f')} |")
    return "\n".join(lines) + "\n"


def combine(runs: list[list[dict]]) -> list[dict]:
    """One row per configuration and thread count from several runs of the whole measurement: each number the
    median over the runs, and the ours/SB3 ratio's lowest and highest run beside it."""
    rows = []
    for same in zip(*runs):
        row = dict(same[0], runs=len(same))
        for key, value in same[0].items():
            if isinstance(value, float):
                row[key] = float(np.median([r[key] for r in same]))
        ratios = [r["ours_vs_sb3"] for r in same if r["ours_vs_sb3"] is not None]
        row["ours_vs_sb3_min"], row["ours_vs_sb3_max"] = (min(ratios), max(ratios)) if ratios else (None, None)
        rows.append(row)
    return rows


def best_threads(rows: list[dict]) -> list[str]:
    """For each configuration, which thread count gave our side more updates per second."""
    lines = []
    for c in CONFIGS:
        mine = [r for r in rows if (r["algo"], r["hidden"], r["batch"]) == (c[0], f"{c[1][0]}x{c[1][1]}", c[2])]
        if len(mine) > 1:
            best = min(mine, key=lambda r: r["ours_ms"])
            lines.append(f"{c[0]} {best['hidden']} batch {c[2]}: fastest with {best['threads']} thread(s) ("
                         + ", ".join(f"{r['threads']}: {r['ours_ms']:.2f} ms" for r in mine) + ")")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats of 30 updates (default 7 of 100)")
    parser.add_argument("--repeats", type=int, help="repeats of each configuration (overrides the mode's)")
    parser.add_argument("--updates", type=int, help="updates per timed run (overrides the mode's)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    parser.add_argument("--runs", type=int, default=3, help="whole measurements, one after the other: the table "
                        "gives each number's median over them and the ratio's range (default 3)")
    parser.add_argument("--no-sb3", action="store_true", help="time our side only, even if SB3 is installed")
    parser.add_argument("--device", help="time learn() on this device (cuda, cuda:N; cpu: a dry run) eager and as "
                        "a CUDA graph, against one CPU thread, instead of the SB3 table")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the CSV and .md")
    args = parser.parse_args(argv)
    command = invocation("update_speed.py", argv)
    if args.device:
        return device_main(args, command)
    repeats, updates = (3, 30) if args.quick else (7, 100)
    repeats, updates = args.repeats or repeats, args.updates or updates
    version = None if args.no_sb3 else sb3_version()
    header = [f"Median ms per update over {repeats} repeats of {updates} updates, ours and SB3 alternated; "
              f"torch {torch.__version__}, "
              + (f"stable-baselines3 {version}." if version else "SB3 not measured (not installed or --no-sb3).")]
    if version is None:
        print("stable-baselines3 is not installed (or --no-sb3): timing our side only", flush=True)
    runs = []
    for run in range(args.runs):
        print(f"run {run + 1} of {args.runs}", flush=True)
        runs.append([row for threads in args.threads
                     for row in measure(threads, repeats, updates, version is not None, 0.3 if args.quick else 1.0)])
    rows = combine(runs)
    header[0] += (f" Each figure is the median over {args.runs} runs of the whole measurement, one after the other; "
                  "the ratio's lowest and highest run in brackets." if args.runs > 1 else "")
    header += ["", f"command: `{command}`"]
    notes = best_threads(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "update_speed.csv", rows, list(rows[0]))
    text = markdown(rows, header) + "".join(f"\n- {n}" for n in notes) + ("\n" if notes else "")
    (out / "update_speed.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()

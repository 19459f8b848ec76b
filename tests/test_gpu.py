"""Training on a GPU (rlharness.gpu): the device replay buffer, the captured update, checkpoints across devices.

The buffer's logic, the capturable optimiser state and the flag run here on the CPU; the tests marked `cuda`
need a GPU and are skipped without one (benchmarks/gpu.py runs them on a GPU machine).
"""
import numpy as np
import pytest
import torch

from rlharness.errors import UsageError
from rlharness.gpu import CapturedUpdate, DeviceReplayBuffer, capture_mode, graphed_learn

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=cuda)]
OBS, ACT = 8, 2


def transition(i: int) -> tuple:
    """Transition number i, each field a function of i: s = i, a = -i, r = 10 i, s' = i + 0.5, d = i odd."""
    return (np.full(OBS, i, np.float32), np.full(ACT, -i, np.float32), 10.0 * i, np.full(OBS, i + 0.5, np.float32),
            bool(i % 2))


def filled(buffer, n: int, start: int = 0):
    for i in range(start, start + n):
        buffer.store_transition(*transition(i))
    return buffer


def assert_rows_are_transitions(batch, allowed: set[int]):
    s, a, r, s_, d = (x.cpu().numpy() for x in batch)
    i = s[:, 0].astype(int)
    assert set(i) <= allowed
    np.testing.assert_array_equal(s, np.repeat(i[:, None], OBS, 1).astype(np.float32))
    np.testing.assert_array_equal(a, -np.repeat(i[:, None], ACT, 1).astype(np.float32))
    np.testing.assert_array_equal(r, 10.0 * i)
    np.testing.assert_array_equal(s_, np.repeat(i[:, None], OBS, 1) + 0.5)
    np.testing.assert_array_equal(d, i % 2)
    return i


@pytest.mark.parametrize("device", DEVICES)
def test_device_buffer_samples_only_filled_slots_whole_transitions(device):
    buffer = filled(DeviceReplayBuffer(100, OBS, ACT, seed=0, device=device), 5)
    batch = buffer.sample_buffer(2000)
    assert [tuple(x.shape) for x in batch] == [(2000, OBS), (2000, ACT), (2000,), (2000, OBS), (2000,)]
    assert all(x.device.type == device and x.dtype == torch.float32 for x in batch)
    i = assert_rows_are_transitions(batch, allowed=set(range(5)))
    assert set(i) == set(range(5))  # uniform over the 5: each drawn (p of missing one ~ 5 * 0.8^2000)


@pytest.mark.parametrize("device", DEVICES)
def test_device_buffer_wraps_around_overwriting_the_oldest(device):
    buffer = filled(DeviceReplayBuffer(4, OBS, ACT, seed=0, device=device), 6)  # 0, 1 overwritten by 4, 5
    assert len(buffer) == 4 and buffer.mem_cntr == 6
    i = assert_rows_are_transitions(buffer.sample_buffer(1000), allowed={2, 3, 4, 5})
    assert set(i) == {2, 3, 4, 5}


def test_device_buffer_same_seed_same_minibatches_and_count_follows_mem_cntr():
    a, b = (filled(DeviceReplayBuffer(50, OBS, ACT, seed=7), 20) for _ in range(2))
    c = filled(DeviceReplayBuffer(50, OBS, ACT, seed=8), 20)
    sa, sb, sc = a.sample_buffer(64)[2], b.sample_buffer(64)[2], c.sample_buffer(64)[2]
    assert torch.equal(sa, sb) and not torch.equal(sa, sc)
    a.mem_cntr = 3  # what a rewind to an episode boundary does: later draws come from slots 0-2 only
    assert_rows_are_transitions(a.sample_buffer(500), allowed={0, 1, 2})


def test_device_buffer_checkpoint_loads_into_the_cpu_buffer_and_back(ddpg):
    gpu_style = filled(DeviceReplayBuffer(10, OBS, ACT, seed=1), 13)
    cpu = ddpg.buffer.ReplayBuffer(10, OBS, ACT, seed=1)
    cpu.load_state_dict(gpu_style.state_dict())
    assert cpu.mem_cntr == 13 and len(cpu) == 10
    assert_rows_are_transitions(cpu.sample_buffer(300), allowed=set(range(3, 13)))
    # and the CPU buffer's state (numpy generator) into a device buffer
    back = DeviceReplayBuffer(10, OBS, ACT, seed=2)
    back.load_state_dict(filled(ddpg.buffer.ReplayBuffer(10, OBS, ACT, seed=3), 4).state_dict())
    assert back.mem_cntr == 4
    assert_rows_are_transitions(back.sample_buffer(300), allowed={0, 1, 2, 3})
    with pytest.raises(ValueError, match="holds 10 transitions, this one 20"):
        DeviceReplayBuffer(20, OBS, ACT).load_state_dict(gpu_style.state_dict())


@pytest.mark.parametrize("algo", ["ddpg", "sac"])
def test_the_critic_record_reads_the_device_buffer_as_the_numpy_one(request, algo):
    """q_bias_row and agent_records read the last episode back from the buffer's fields: the same rows from
    either buffer (the ring wrapped, the episode ending on a terminal transition)."""
    from rlharness.diagnostics import agent_records, q_bias_row

    module = request.getfixturevalue(algo)
    plain, device_style = make_agent(module, algo), make_agent(module, algo)
    device_style.memory = DeviceReplayBuffer(1000, OBS, ACT, seed=0)
    for agent in (plain, device_style):
        random_transitions(agent, n=1234)
        agent.remember(np.ones(OBS), np.zeros(ACT), 5.0, np.ones(OBS), True)
    for episode_len in (1, 40):
        torch.manual_seed(0)
        expected = q_bias_row(plain, episode_len, 0.99), agent_records(plain, episode_len)
        torch.manual_seed(0)
        assert (q_bias_row(device_style, episode_len, 0.99), agent_records(device_style, episode_len)) == expected
    index = np.array([998, 999, 0, 1])
    for field in ("state_memory", "action_memory", "reward_memory", "new_state_memory", "terminal_memory"):
        np.testing.assert_array_equal(getattr(device_style.memory, field)[index], getattr(plain.memory, field)[index])


def test_device_buffer_state_dict_resumes_the_same_draws():
    a = filled(DeviceReplayBuffer(30, OBS, ACT, seed=4), 25)
    a.sample_buffer(16)
    b = DeviceReplayBuffer(30, OBS, ACT, seed=99)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.sample_buffer(32)[0], b.sample_buffer(32)[0])


def make_agent(module, algo: str, device: str = "cpu", seed: int = 0):
    low, high = -np.ones(ACT, np.float32), np.ones(ACT, np.float32)
    torch.manual_seed(seed)
    kwargs = dict(input_dims=OBS, n_actions=ACT, action_low=low, action_high=high, fc1_dims=32, fc2_dims=32,
                  batch_size=16, max_size=1000, device=device, seed=seed)
    if algo == "ddpg":
        return module.ddpg_torch.Agent(**kwargs)
    return module.sac_torch.Agent(**kwargs)


def random_transitions(agent, n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        agent.remember(rng.normal(size=OBS), rng.uniform(-1, 1, ACT), rng.normal(), rng.normal(size=OBS),
                       bool(rng.random() < 0.05))


@pytest.mark.parametrize("algo", ["ddpg", "sac"])
def test_on_the_cpu_the_agent_keeps_the_numpy_buffer_and_plain_adam(request, algo):
    agent = make_agent(request.getfixturevalue(algo), algo)
    assert type(agent.memory).__name__ == "ReplayBuffer"
    assert not any(g["capturable"] for _, part in agent.parts().items() if isinstance(part, torch.optim.Optimizer)
                   for g in part.param_groups)
    assert graphed_learn(agent, "auto") == agent.learn and graphed_learn(agent, "off") == agent.learn


@pytest.mark.parametrize("algo", ["ddpg", "sac"])
def test_learn_takes_the_device_buffers_minibatch(request, algo):
    """learn() runs on the column views the device buffer returns and gives the same update as from the numpy
    buffer holding the same transitions, drawing the same rows."""
    module = request.getfixturevalue(algo)
    plain, device_style = make_agent(module, algo), make_agent(module, algo)
    device_style.memory = DeviceReplayBuffer(1000, OBS, ACT, seed=0)
    random_transitions(plain)
    random_transitions(device_style)
    rows = torch.randperm(200)[:16]
    for agent in (plain, device_style):  # both buffers hand learn() the same 16 transitions
        agent.memory.sample_buffer = lambda batch_size, memory=agent.memory: buffer_rows(memory, rows)
        torch.manual_seed(5)
        losses = agent.learn()
        assert all(torch.isfinite(x) for x in losses)
    for name, part in plain.parts().items():
        if isinstance(part, torch.nn.Module):
            for (key, x), y in zip(part.state_dict().items(), device_style.parts()[name].state_dict().values()):
                torch.testing.assert_close(x, y, msg=f"{name}.{key}")


def buffer_rows(buffer, rows: torch.Tensor) -> tuple:
    """Transitions `rows` of either buffer as learn() receives them (s, a, r, s', d)."""
    if isinstance(buffer, DeviceReplayBuffer):
        c, batch = buffer.columns, buffer.storage[rows]
        return tuple(batch[:, c[k]] for k in ("state", "action", "reward", "new_state", "terminal"))
    return tuple(torch.from_numpy(m[rows.numpy()]) for m in (buffer.state_memory, buffer.action_memory,
                                                             buffer.reward_memory, buffer.new_state_memory,
                                                             buffer.terminal_memory))


@pytest.mark.parametrize("algo", ["ddpg", "sac"])
def test_optimiser_state_saved_capturable_on_a_gpu_loads_and_steps_on_the_cpu(request, algo, tmp_path):
    """A GPU run saves its Adam param groups with capturable=True; the CPU agent that loads them keeps its own
    capturable=False (Adam on the CPU refuses capturable state) and trains on."""
    module = request.getfixturevalue(algo)
    saver = make_agent(module, algo)
    random_transitions(saver)
    saver.learn()
    saver.save_models(tmp_path)
    for name, part in saver.parts().items():
        if isinstance(part, torch.optim.Optimizer):
            state = torch.load(tmp_path / f"{name}.pt")
            for group in state["param_groups"]:
                group["capturable"] = True
            torch.save(state, tmp_path / f"{name}.pt")
    loader = make_agent(module, algo, seed=1)
    loader.load_models(tmp_path)
    random_transitions(loader)
    assert all(torch.isfinite(x) for x in loader.learn())
    assert not any(g["capturable"] for part in loader.parts().values() if isinstance(part, torch.optim.Optimizer)
                   for g in part.param_groups)


def test_cuda_graph_on_without_cuda_is_refused_and_auto_means_cuda_only():
    with pytest.raises(UsageError, match="--cuda-graph on needs a CUDA device, and this run is on cpu"):
        capture_mode("on", torch.device("cpu"))
    assert capture_mode("auto", torch.device("cpu")) is False and capture_mode("off", torch.device("cpu")) is False
    assert capture_mode("auto", torch.device("cuda")) is True and capture_mode("off", torch.device("cuda")) is False


# ---------------------------------------------------------------------------------------------------------------
# On a GPU only
# ---------------------------------------------------------------------------------------------------------------
@cuda
@pytest.mark.parametrize("algo", ["ddpg", "sac"])
def test_graph_replays_equal_eager_updates(request, algo):
    """K replays of the captured learn() give the networks that K eager learn() calls give from the same state
    and generators."""
    module = request.getfixturevalue(algo)
    eager, graphed = make_agent(module, algo, "cuda"), make_agent(module, algo, "cuda")
    assert type(graphed.memory) is DeviceReplayBuffer and graphed.actor_optimizer.param_groups[0]["capturable"]
    random_transitions(eager)
    random_transitions(graphed)
    update = graphed_learn(graphed, "auto")
    assert isinstance(update, CapturedUpdate)
    torch.cuda.manual_seed(3)
    for _ in range(20):
        eager_losses = eager.learn()
    torch.cuda.manual_seed(3)
    for _ in range(20):  # 3 eager warm-up updates, then the capture and 17 replays
        graphed_losses = update()
    assert update.graph is not None
    torch.cuda.synchronize()
    for x, y in zip(eager_losses, graphed_losses):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
    for name, part in eager.parts().items():
        if isinstance(part, torch.nn.Module):
            for (key, x), y in zip(part.state_dict().items(), graphed.parts()[name].state_dict().values()):
                torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")


@cuda
def test_replays_draw_fresh_minibatches_from_transitions_stored_after_the_capture():
    """The filled count is a device tensor and the generator is registered: each replay draws anew, from every
    slot filled so far, the slots stored after the capture included."""
    buffer = filled(DeviceReplayBuffer(100, OBS, ACT, seed=0, device="cuda"), 20)
    draw = CapturedUpdate(lambda: buffer.sample_buffer(512)[0][:, 0].clone(), generators=(buffer.generator,),
                          device="cuda")
    for _ in range(3):  # eager warm-up, the third also captures
        draw()
    first, second = draw().clone(), draw().clone()
    assert draw.graph is not None and not torch.equal(first, second)
    assert set(first.long().tolist()) == set(range(20))
    filled(buffer, 20, start=20)
    later = draw().long().tolist()
    assert set(later) == set(range(40))


@cuda
@pytest.mark.parametrize("algo", ["ddpg", "sac"])
def test_a_checkpoint_saved_on_the_gpu_loads_on_the_cpu_and_back(request, algo, tmp_path):
    module = request.getfixturevalue(algo)
    gpu = make_agent(module, algo, "cuda")
    random_transitions(gpu)
    update = graphed_learn(gpu, "on")
    for _ in range(6):
        update()
    gpu.save_models(tmp_path)
    cpu = make_agent(module, algo, "cpu", seed=1)
    cpu.load_models(tmp_path)
    for name, part in gpu.parts().items():
        if isinstance(part, torch.nn.Module):
            for x, y in zip(part.state_dict().values(), cpu.parts()[name].state_dict().values()):
                torch.testing.assert_close(x.cpu(), y)
    random_transitions(cpu)
    assert all(torch.isfinite(x) for x in cpu.learn())
    cpu.save_models(tmp_path / "back")
    again = make_agent(module, algo, "cuda", seed=2)
    again.load_models(tmp_path / "back")
    random_transitions(again)
    update = graphed_learn(again, "on")
    for _ in range(6):
        losses = update()
    assert all(torch.isfinite(x) for x in losses)


@cuda
def test_a_gpu_run_records_saves_and_its_checkpoints_evaluate_and_resume_on_the_cpu(algo, tmp_path, capsys):
    """End to end on CUDA (the graph on, the critic record read from the device buffer), then the CPU takes over:
    --evaluate and --resume of the GPU run's folders."""
    from conftest import dirs, read_scores, run_in_process

    train = ["--max-steps", "2500", "--learning-starts", "500", "--save-buffer", *algo.small, *dirs(tmp_path)]
    code, out, err = run_in_process(algo, [*train, "--device", "cuda", "--cuda-graph", "on"], capsys)
    assert code == 0, err
    scores = read_scores(tmp_path / "run" / "plots" / f"{algo.name}_LunarLanderContinuous-v2.csv")
    assert len(scores) >= 2 and np.isfinite(scores).all()
    code, out, err = run_in_process(algo, ["--evaluate", "1", "--device", "cpu", *dirs(tmp_path)], capsys)
    assert code == 0 and "mean score" in out, err
    code, out, err = run_in_process(algo, ["--resume", "--max-steps", "3500", "--device", "cpu", *dirs(tmp_path)],
                                    capsys)
    assert code == 0, err
    assert len(read_scores(tmp_path / "run" / "plots" / f"{algo.name}_LunarLanderContinuous-v2.csv")) > len(scores)


def test_captured_update_warms_up_captures_once_then_only_replays(monkeypatch):
    """The wrapper's control flow, on the CPU with torch.cuda's graph pieces stood in for: None (buffer too small)
    passes through and is no warm-up; after WARMUP eager updates one learn() is recorded with the buffer's
    generator registered; every later call replays the graph and returns the recorded outputs."""
    import contextlib

    import rlharness.gpu as gpu

    events = []

    class Graph:
        def register_generator_state(self, generator):
            events.append(("register", generator))

        def replay(self):
            events.append("replay")

    @contextlib.contextmanager
    def recording(graph, stream=None):
        events.append("capture begins")
        yield
        events.append("capture ends")

    class Stream:
        def __init__(self, device=None):
            pass

        def wait_stream(self, other):
            pass

    fake_cuda = type("FakeCuda", (), dict(
        Stream=Stream, current_stream=staticmethod(Stream), CUDAGraph=Graph, graph=staticmethod(recording),
        stream=staticmethod(lambda s: contextlib.nullcontext()),
        device=staticmethod(lambda d: contextlib.nullcontext())))
    monkeypatch.setattr(gpu.torch, "cuda", fake_cuda)
    outputs = iter([None, None, "loss 1", "loss 2", "loss 3", "recorded loss"])

    def learn():
        events.append("learn")
        return next(outputs)

    update = CapturedUpdate(learn, generators=("buffer generator",), warmup=3)
    results = [update() for _ in range(8)]
    assert results == [None, None, "loss 1", "loss 2", "loss 3", "recorded loss", "recorded loss", "recorded loss"]
    assert events == ["learn", "learn", "learn", "learn", "learn", ("register", "buffer generator"),
                      "capture begins", "learn", "capture ends", "replay", "replay", "replay"]

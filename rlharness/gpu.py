"""Training on a GPU: the replay buffer kept on the device, and learn() captured once as a CUDA graph.

Small networks updated eagerly on a GPU wait on kernel launches (about 30 per update), not on arithmetic: an
eager GPU update is slower than one CPU core. A CUDA graph records the launches of one whole learn() call
(minibatch draw, both losses, backward passes, Adam steps, target update) once, and replays them with a single
launch. Three things make learn() replayable without changing its text:

- the minibatch is drawn on the device (DeviceReplayBuffer), from a torch generator, with the count of filled
  slots held in a device tensor, so no number crosses to the host inside an update;
- the optimisers are built with capturable=True on CUDA (their step count lives on the device);
- every tensor learn() touches keeps its address: parameters and optimiser state are updated in place.

CapturedUpdate runs the first WARMUP updates eagerly (they allocate gradients and optimiser state), captures
the next call and from then on replays it. Everything here also runs on the CPU (the buffer is tested there);
only the capture itself needs CUDA.
"""
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rlharness.errors import UsageError

WARMUP = 3  # eager updates before the capture (the PyTorch docs' whole-network example uses 3)


class _Column:
    """One field of the stored transitions, read back to the host as a numpy array when indexed (the critic
    record reads an episode's states, rewards and terminal flags so, as from ReplayBuffer's arrays)."""

    def __init__(self, buffer: "DeviceReplayBuffer", name: str) -> None:
        self.buffer, self.name = buffer, name

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = self.buffer.storage[torch.as_tensor(index, device=self.buffer.device)]
        return rows[..., self.buffer.columns[self.name]].cpu().numpy()


class DeviceReplayBuffer:
    """The replay buffer D (the same ring and interface as buffer.py's ReplayBuffer) stored on `device`.

    One row per transition, [s | a | r | s' | d], in a (max_size, width) float32 tensor: storing a transition is
    one host-to-device copy, and sample_buffer is one gather that runs inside a CUDA graph.
    """

    def __init__(self, max_size: int, input_shape: int | tuple, n_actions: int, seed: int | None = None,
                 device: torch.device | str = "cpu") -> None:
        shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
        if len(shape) != 1:
            raise ValueError(f"the device buffer stores flat observations, not shape {shape}")
        self.mem_size, self.device = max_size, torch.device(device)
        self.obs, self.n_actions = shape[0], n_actions
        o, a = self.obs, n_actions
        self.columns = {"state": slice(0, o), "action": slice(o, o + a), "reward": o + a,
                        "new_state": slice(o + a + 1, 2 * o + a + 1), "terminal": 2 * o + a + 1}
        self.storage = torch.zeros(max_size, 2 * o + a + 2, dtype=torch.float32, device=self.device)
        self._row = np.zeros(2 * o + a + 2, dtype=np.float32)  # the host row written by store_transition
        self._filled = torch.zeros((), dtype=torch.float32, device=self.device)  # len(self), on the device
        self.generator = torch.Generator(self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        self._mem_cntr = 0

    state_memory = property(lambda self: _Column(self, "state"))
    action_memory = property(lambda self: _Column(self, "action"))
    reward_memory = property(lambda self: _Column(self, "reward"))
    new_state_memory = property(lambda self: _Column(self, "new_state"))
    terminal_memory = property(lambda self: _Column(self, "terminal"))

    @property
    def mem_cntr(self) -> int:
        """Transitions stored so far; slot mem_cntr % mem_size is written next."""
        return self._mem_cntr

    @mem_cntr.setter
    def mem_cntr(self, value: int) -> None:
        self._mem_cntr = int(value)
        self._filled.fill_(len(self))

    def store_transition(self, state: np.ndarray, action: np.ndarray, reward: float, state_: np.ndarray,
                         done: bool) -> None:
        """Write (s, a, r, s', d) into the next slot, overwriting the oldest once full."""
        c, row = self.columns, self._row
        row[c["state"]], row[c["action"]], row[c["reward"]] = state, action, reward
        row[c["new_state"]], row[c["terminal"]] = state_, done
        self.storage[self._mem_cntr % self.mem_size].copy_(torch.from_numpy(row))
        self.mem_cntr = self._mem_cntr + 1

    def __len__(self) -> int:
        return min(self._mem_cntr, self.mem_size)

    def sample_buffer(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """A uniform minibatch (s, a, r, s_, done) from the filled slots, drawn on the device with no host sync."""
        u = torch.rand(batch_size, generator=self.generator, device=self.device)
        batch = self.storage[(u * self._filled).long().clamp_(max=self.mem_size - 1)]
        c = self.columns
        return (batch[:, c["state"]], batch[:, c["action"]], batch[:, c["reward"]], batch[:, c["new_state"]],
                batch[:, c["terminal"]])

    # Checkpoints (--save-buffer): the same keys as ReplayBuffer's, so a buffer saved on one device loads on another
    def state_dict(self) -> dict:
        """The filled slots as CPU tensors, named as ReplayBuffer names them, the counter and the generator."""
        rows, c = self.storage[:len(self)].cpu(), self.columns
        return dict(state_memory=rows[:, c["state"]].clone(), action_memory=rows[:, c["action"]].clone(),
                    reward_memory=rows[:, c["reward"]].clone(), new_state_memory=rows[:, c["new_state"]].clone(),
                    terminal_memory=rows[:, c["terminal"]].clone(), mem_size=self.mem_size,
                    mem_cntr=self._mem_cntr, rng=self.rng_state())

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict of this class or of ReplayBuffer (same capacity and shapes)."""
        if state["mem_size"] != self.mem_size:
            raise ValueError(f"the saved buffer holds {state['mem_size']} transitions, this one {self.mem_size}")
        n, c = len(state["reward_memory"]), self.columns
        for name, column in (("state", "state_memory"), ("action", "action_memory"),
                             ("new_state", "new_state_memory")):
            width = c[name].stop - c[name].start
            if tuple(state[column].shape[1:]) != (width,):
                raise ValueError(f"saved {column} has shape {tuple(state[column].shape)}, this buffer "
                                 f"{(self.mem_size, width)}")
            self.storage[:n, c[name]] = state[column].to(self.device)
        self.storage[:n, c["reward"]] = state["reward_memory"].to(self.device)
        self.storage[:n, c["terminal"]] = state["terminal_memory"].to(self.device)
        self.mem_cntr = int(state["mem_cntr"])
        self.set_rng_state(state["rng"])

    def rng_state(self) -> torch.Tensor:
        """The sampler's state (a CPU byte tensor)."""
        return self.generator.get_state()

    def set_rng_state(self, state: Any) -> None:
        """Put back rng_state(); a CPU ReplayBuffer's numpy state (a checkpoint from the CPU) seeds the generator
        from its numbers instead: the run continues reproducibly, though not with the draws the CPU run made."""
        if torch.is_tensor(state):
            self.generator.set_state(state)
        else:
            digest = hashlib.sha256(repr(state).encode()).digest()
            self.generator.manual_seed(int.from_bytes(digest[:8], "little") >> 1)


class CapturedUpdate:
    """`learn` (an agent's learn()) run eagerly WARMUP times, then captured as a CUDA graph and replayed.

    Called like learn(): returns what it returns (None while the buffer holds less than a minibatch). After the
    capture the returned loss tensors are the graph's own outputs, overwritten by each replay. `generators` are
    the non-default generators learn() draws from (the buffer's), registered so each replay advances them.
    Loading a state_dict into an optimiser replaces its state tensors: do it before the capture (--resume does).
    """

    def __init__(self, learn: Callable[[], Any], generators: tuple = (), warmup: int = WARMUP,
                 device: torch.device | str = "cuda") -> None:
        self.learn, self.generators, self.warmup = learn, generators, warmup
        self.device = torch.device(device)
        self.eager_updates, self.graph, self.out = 0, None, None
        self.stream = torch.cuda.Stream(device=self.device)

    def __call__(self) -> Any:
        with torch.cuda.device(self.device):  # cuda:N: its streams and its default generator
            if self.graph is not None:
                self.graph.replay()
                return self.out
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):  # warm up on the stream the capture will use, as the docs ask
                out = self.learn()
                if out is not None:
                    self.eager_updates += 1
                    if self.eager_updates == self.warmup:
                        self._capture()
            torch.cuda.current_stream().wait_stream(self.stream)
            return out

    def _capture(self) -> None:
        """Record one learn() call (it runs nothing now; the next __call__ replays it)."""
        graph = torch.cuda.CUDAGraph()
        for generator in self.generators:
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph, stream=self.stream):
            self.out = self.learn()
        self.graph = graph


def capture_mode(mode: str, device: torch.device) -> bool:
    """--cuda-graph: 'auto' captures on CUDA only; 'on' needs CUDA; 'off' never captures."""
    if mode == "on" and device.type != "cuda":
        raise UsageError(f"--cuda-graph on needs a CUDA device, and this run is on {device} (use auto or off)")
    return mode == "on" or (mode == "auto" and device.type == "cuda")


def graphed_learn(agent: Any, mode: str) -> Callable[[], Any]:
    """agent.learn, or a CapturedUpdate of it when --cuda-graph says so (docs/gpu.md).

    An agent on CUDA keeps its replay buffer in a DeviceReplayBuffer (both agents do): the graph draws its
    minibatches with that buffer's generator."""
    if not capture_mode(mode, agent.device):
        return agent.learn
    return CapturedUpdate(agent.learn, generators=(agent.memory.generator,), device=agent.device)

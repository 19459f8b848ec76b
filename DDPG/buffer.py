"""Experience replay: the lecture's "store transition (s, a, r, s', d) in R; sample a random minibatch from R".

`DDPG/buffer.py` and `SAC/buffer.py` are identical copies (a test enforces it).
Memory is preallocated float32 arrays used as a ring: once full, the oldest transition is overwritten.
"""
import numpy as np
import torch


class ReplayBuffer:
    """Ring buffer of transitions; `sample_buffer` draws uniformly from the filled slots only."""

    def __init__(self, max_size: int, input_shape: int | tuple, n_actions: int, seed: int | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.mem_size = max_size
        self.mem_cntr = 0  # transitions stored so far; slot mem_cntr % mem_size is written next
        shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
        self.state_memory = np.zeros((max_size, *shape), dtype=np.float32)
        self.new_state_memory = np.zeros((max_size, *shape), dtype=np.float32)
        self.action_memory = np.zeros((max_size, n_actions), dtype=np.float32)
        self.reward_memory = np.zeros(max_size, dtype=np.float32)
        self.terminal_memory = np.zeros(max_size, dtype=np.float32)  # 1.0 = terminated (not truncated)
        self.rng = np.random.default_rng(seed)
        self.device = torch.device(device)

    def store_transition(self, state: np.ndarray, action: np.ndarray, reward: float, state_: np.ndarray,
                         done: bool) -> None:
        """Write (s, a, r, s', d) into the next slot, overwriting the oldest once full."""
        index = self.mem_cntr % self.mem_size
        self.state_memory[index] = state
        self.action_memory[index] = action
        self.reward_memory[index] = reward
        self.new_state_memory[index] = state_
        self.terminal_memory[index] = done
        self.mem_cntr += 1

    def __len__(self) -> int:
        return min(self.mem_cntr, self.mem_size)

    def sample_buffer(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """A uniform minibatch (s, a, r, s_, done) as float32 tensors of shape (B, .) and (B,)."""
        batch = self.rng.integers(0, len(self), size=batch_size)
        memories = (self.state_memory, self.action_memory, self.reward_memory, self.new_state_memory,
                    self.terminal_memory)
        return tuple(torch.from_numpy(m[batch]).to(self.device) for m in memories)

    def rng_state(self) -> dict:
        """The sampler's state (what --resume puts back)."""
        return self.rng.bit_generator.state

    def set_rng_state(self, state) -> None:
        """Put back rng_state(); a GPU buffer's torch generator state (a run saved on a GPU) seeds a new
        generator instead: reproducible, but not the draws the GPU run would have made."""
        if isinstance(state, dict):
            self.rng.bit_generator.state = state
        else:
            self.rng = np.random.default_rng(np.frombuffer(state.numpy().tobytes(), dtype=np.uint32))

    # Checkpoints (--save-buffer): the filled slots as tensors, the counter and the sampling RNG's state
    _ARRAYS = ("state_memory", "new_state_memory", "action_memory", "reward_memory", "terminal_memory")

    def state_dict(self) -> dict:
        """The stored transitions and everything sample_buffer depends on, as tensors and plain numbers."""
        n = len(self)
        state = {name: torch.from_numpy(getattr(self, name)[:n]) for name in self._ARRAYS}
        return dict(state, mem_size=self.mem_size, mem_cntr=self.mem_cntr, rng=self.rng.bit_generator.state)

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict saved into a buffer of the same capacity and shapes."""
        if state["mem_size"] != self.mem_size:
            raise ValueError(f"the saved buffer holds {state['mem_size']} transitions, this one {self.mem_size}")
        for name in self._ARRAYS:
            memory, saved = getattr(self, name), state[name].numpy()
            if saved.shape[1:] != memory.shape[1:]:
                raise ValueError(f"saved {name} has shape {tuple(saved.shape)}, this buffer {memory.shape}")
            memory[:len(saved)] = saved
        self.mem_cntr = int(state["mem_cntr"])
        self.set_rng_state(state["rng"])

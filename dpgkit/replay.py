"""Uniform experience replay: a preallocated ring buffer of transitions.

Each transition (s, a, r, s', terminated, truncated) is stored in fixed numpy arrays; when the
buffer is full the oldest transition is overwritten. A batch is sampled uniformly with replacement
in one gather per field. ``terminated`` and ``truncated`` are stored apart: only ``terminated``
cuts the bootstrap in the TD target, ``truncated`` is kept for analysis.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """A batch of B transitions as float32 tensors: obs (B, obs_dim), action (B, action_dim),
    reward (B,), next_obs (B, obs_dim), terminated (B,) in {0, 1}."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    terminated: Tensor


class ReplayBuffer:
    """A ring buffer holding the last ``capacity`` transitions.

    Args:
        capacity: the most transitions kept.
        obs_dim: size of a flat observation.
        action_dim: size of an action (stored in dpgkit's [-1, 1] scale).
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, num_streams: int = 1
                 ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.action = np.zeros((capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.truncated = np.zeros(capacity, dtype=bool)
        self.next_index = 0  # where the next transition goes
        self.size = 0  # how many transitions are stored

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float | np.ndarray,
        next_obs: np.ndarray,
        terminated: bool | np.ndarray,
        truncated: bool | np.ndarray,
        streams: np.ndarray | None = None,
    ) -> None:
        """Store one transition, or n at once (each argument with a leading dimension n),
        overwriting the oldest when full.

        ``next_obs`` must be the observation the step actually reached (for the last step of an
        episode: the final observation, not the first one of the next episode). ``streams``
        names the experience stream (env) of each row, in ``[0, num_streams)``; by default row i
        is stream i.
        """
        reward_arr = np.asarray(reward, dtype=np.float32).reshape(-1)
        n = reward_arr.size
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        i = (self.next_index + np.arange(n)) % self.capacity
        self.obs[i] = np.reshape(obs, (n, -1))
        self.action[i] = np.reshape(action, (n, -1))
        self.reward[i] = reward_arr
        self.next_obs[i] = np.reshape(next_obs, (n, -1))
        self.terminated[i] = np.reshape(terminated, n)
        self.truncated[i] = np.reshape(truncated, n)
        self.next_index = int((self.next_index + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """B indices drawn uniformly, with replacement, from the stored transitions."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=batch_size)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A uniformly sampled batch of ``batch_size`` transitions (one gather per field)."""
        return self.gather(self.sample_indices(batch_size, rng))

    def gather(self, indices: np.ndarray) -> Batch:
        """The transitions at ``indices`` as a :class:`Batch` (no copy beyond the gather)."""
        return Batch(
            obs=torch.from_numpy(self.obs[indices]),
            action=torch.from_numpy(self.action[indices]),
            reward=torch.from_numpy(self.reward[indices]),
            next_obs=torch.from_numpy(self.next_obs[indices]),
            terminated=torch.from_numpy(self.terminated[indices]),
        )

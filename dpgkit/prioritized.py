"""Prioritized experience replay (Schaul et al. 2016), proportional variant, as in Ape-X.

Transition i is drawn with probability P(i) = p_i^alpha / sum_k p_k^alpha, where its priority
p_i = |delta_i| + epsilon is its last absolute TD error (new transitions get the largest
priority seen so far, so each is likely to be drawn at least once). The bias this sampling adds
to the critic's update is corrected by importance weights w_i = (N P(i))^-beta / max_j w_j in the
critic loss, with beta annealed towards 1 over the run. The formulas are the named functions
:func:`~dpgkit.equations.sampling_priority` and :func:`~dpgkit.equations.importance_weights`.

Sampling is stratified: the total priority mass is cut into B equal segments and one transition
is drawn from each, by descending a sum-tree (:class:`SumTree`) in O(log N).
"""

import dataclasses

import numpy as np
import torch

from dpgkit.batch import Batch
from dpgkit.config import DDPGConfig
from dpgkit.equations import importance_weights, sampling_priority
from dpgkit.replay import ReplayBuffer


class SumTree:
    """A binary tree over ``size`` leaves whose inner nodes hold the sum (and, in a second tree,
    the minimum) of the leaves below: set leaves and find the leaf at a prefix sum in O(log n).
    """

    def __init__(self, size: int) -> None:
        self.leaves = 1 << max(size - 1, 1).bit_length()  # a power of two >= size
        self.sums = np.zeros(2 * self.leaves)
        self.mins = np.full(2 * self.leaves, np.inf)

    @property
    def total(self) -> float:
        return float(self.sums[1])

    @property
    def min(self) -> float:
        """The smallest non-zero leaf (inf when all are zero)."""
        return float(self.mins[1])

    def max_leaf(self) -> float:
        """The largest leaf (0 when all are zero), by a scan of the leaves: O(n)."""
        return float(self.sums[self.leaves:].max())

    def get(self, leaves: np.ndarray) -> np.ndarray:
        return self.sums[leaves + self.leaves]

    def set(self, leaves: np.ndarray, values: np.ndarray) -> None:
        """Leaf i <- values[i] (0 removes a leaf), then every ancestor is recomputed."""
        nodes = np.asarray(leaves, dtype=np.int64) + self.leaves
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), nodes.shape)
        self.sums[nodes] = values
        self.mins[nodes] = np.where(values > 0, values, np.inf)
        while nodes.size and nodes[0] > 1:
            nodes = np.unique(nodes // 2)
            self.sums[nodes] = self.sums[2 * nodes] + self.sums[2 * nodes + 1]
            self.mins[nodes] = np.minimum(self.mins[2 * nodes], self.mins[2 * nodes + 1])

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each prefix sum in ``mass`` (in [0, total)): the leaf i whose interval
        [sum of leaves before i, that + leaf i) contains it."""
        nodes = np.ones(len(mass), dtype=np.int64)
        mass = np.asarray(mass, dtype=np.float64).copy()
        while nodes[0] < self.leaves:
            left = 2 * nodes
            go_right = mass >= self.sums[left]
            mass -= np.where(go_right, self.sums[left], 0.0)
            nodes = left + go_right
        return nodes - self.leaves


class TreePriorities:
    """What both prioritized buffers (this module's and :mod:`dpgkit.lap`'s) do with priorities
    kept in a :class:`SumTree` (``self.tree``) with a running maximum (``self.max_priority``):
    find the rows at given prefix sums, and checkpoint the stored rows' leaves and that maximum
    beside the buffer's own arrays. Listed before
    the buffer class, as in ``class B(TreePriorities, ReplayBuffer)``."""

    tree: SumTree
    max_priority: float

    def _rows_at(self, mass: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The rows whose leaves hold these prefix sums of the priorities; one that rounding
        walks past the last non-zero leaf is drawn again, uniformly over the whole mass."""
        rows = np.minimum(self.tree.find(mass), len(self.valid) - 1)
        bad = ~self.valid[rows]
        while bad.any():
            redrawn = rng.random(int(bad.sum())) * self.tree.total
            rows[bad] = np.minimum(self.tree.find(redrawn), len(self.valid) - 1)
            bad = ~self.valid[rows]
        return rows

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, counters = super().state()
        arrays["priority"] = self.tree.get(self._written_rows())
        return arrays, {**counters, "max_priority": self.max_priority}

    def load_state(self, arrays: dict[str, np.ndarray], counters: dict) -> None:
        super().load_state(arrays, counters)
        rows = self._written_rows()
        if arrays["priority"].shape != rows.shape:
            raise ValueError(f"replay priorities have shape {arrays['priority'].shape}")
        self.tree.set(rows, arrays["priority"])
        self.max_priority = float(counters["max_priority"])


class PrioritizedReplayBuffer(TreePriorities, ReplayBuffer):
    """:class:`~dpgkit.replay.ReplayBuffer` with proportional prioritized sampling.

    Args (beyond the ReplayBuffer's; by default the config's priority_alpha, priority_beta and
    priority_epsilon):
        alpha: how much the priorities count (0: uniform).
        beta: the importance-weight exponent now (set it as the run goes; 1: full correction).
        epsilon: added to |TD error| so that no stored transition has zero probability.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, num_streams: int = 1,
                 n_step: int = DDPGConfig.n_step, gamma: float = DDPGConfig.gamma,
                 alpha: float = DDPGConfig.priority_alpha, beta: float = DDPGConfig.priority_beta,
                 epsilon: float = DDPGConfig.priority_epsilon) -> None:
        self.tree = SumTree(-(-capacity // num_streams) * num_streams + num_streams)
        super().__init__(capacity, obs_dim, action_dim, num_streams, n_step, gamma)
        self.alpha, self.beta, self.epsilon = alpha, beta, epsilon
        self.max_priority = 1.0  # the largest p_i seen: what a new transition gets

    def _set_valid(self, rows: np.ndarray, value: bool) -> None:
        super()._set_valid(rows, value)
        self.tree.set(rows, self.max_priority ** self.alpha if value else 0.0)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """B rows, row i with probability P(i), one from each of B equal slices of the mass."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        segment = self.tree.total / batch_size
        return self._rows_at((np.arange(batch_size) + rng.random(batch_size)) * segment, rng)

    def gather(self, indices: np.ndarray) -> Batch:
        """The transitions at ``indices`` with their importance weights."""
        batch = super().gather(indices)
        probabilities = self.tree.get(indices) / self.tree.total
        weights = importance_weights(probabilities, self.tree.min / self.tree.total, self.beta)
        return dataclasses.replace(batch, weights=torch.from_numpy(weights.astype(np.float32)))

    def update_priorities(self, indices: np.ndarray, td_error: np.ndarray) -> None:
        """p_i <- |delta_i| + epsilon for the transitions just learned from (rows overwritten
        since they were sampled are skipped)."""
        priority = sampling_priority(np.asarray(td_error, dtype=np.float64), self.epsilon)
        keep = self.valid[indices]
        self.tree.set(indices[keep], priority[keep] ** self.alpha)
        self.max_priority = max(self.max_priority, float(priority.max(initial=0.0)))



def make_replay(config: DDPGConfig, obs_dim: int, action_dim: int, num_streams: int
                ) -> ReplayBuffer:
    """The replay of ``config``: uniform or prioritized, one- or n-step; one stream per env."""
    if config.prioritized:
        return PrioritizedReplayBuffer(
            config.replay_size, obs_dim, action_dim, num_streams, config.n_step, config.gamma,
            config.priority_alpha, config.priority_beta, config.priority_epsilon)
    return ReplayBuffer(config.replay_size, obs_dim, action_dim, num_streams, config.n_step,
                        config.gamma)

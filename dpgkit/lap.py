"""Loss-adjusted prioritized replay, LAP (Fujimoto, Meger & Precup 2020), as TD7 uses it.

Transition i is drawn with probability P(i) = p_i / sum_j p_j, where its stored priority is
already p_i = max(max_k |delta_ik|, min_priority)^alpha (:func:`~dpgkit.equations.lap_priority`,
the larger TD error of the critics at the last update that drew it). There are no importance
weights: the critic's loss, :func:`~dpgkit.equations.lap_huber_loss`, is chosen so that (at
alpha = 1) its expected gradient under this sampling is proportional to that of the mean squared
error under uniform sampling.
A new transition gets the running maximum priority, which :meth:`LAPReplayBuffer.
reset_max_priority` brings back to the largest priority still stored (TD7 calls it at every hard
target update), so one old outlier does not over-sample every later transition.

Differences from :class:`~dpgkit.prioritized.PrioritizedReplayBuffer` (whose sum tree this
reuses): the priority and its exponent are one stored number (no second exponent at sampling),
no importance weights, the running maximum is resettable, and the B draws are independent, as
in the authors' code (sfujim/TD7, ``buffer.py``), not one per slice of the mass. The class
subclasses :class:`~dpgkit.replay.ReplayBuffer` directly (one level, not through the
prioritized buffer, whose priorities mean something else).
"""

import numpy as np

from dpgkit.equations import lap_priority
from dpgkit.prioritized import SumTree, TreePriorities
from dpgkit.replay import ReplayBuffer


class LAPReplayBuffer(TreePriorities, ReplayBuffer):
    """:class:`~dpgkit.replay.ReplayBuffer` with LAP's proportional sampling.

    Args (beyond the ReplayBuffer's):
        alpha: the exponent of the priority (0.4 in TD7; 0: uniform).
        min_priority: the floor on |TD error| before the exponent (1 in TD7), also the Huber
            loss's threshold.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, num_streams: int = 1,
                 n_step: int = 1, gamma: float = 0.99, alpha: float = 0.4,
                 min_priority: float = 1.0) -> None:
        self.tree = SumTree(-(-capacity // num_streams) * num_streams + num_streams)
        super().__init__(capacity, obs_dim, action_dim, num_streams, n_step, gamma)
        self.alpha, self.min_priority = alpha, min_priority
        self.max_priority = 1.0  # what a new transition gets: the largest p_i, in sampling units

    def _set_valid(self, rows: np.ndarray, value: bool) -> None:
        super()._set_valid(rows, value)
        self.tree.set(rows, self.max_priority if value else 0.0)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """B rows drawn independently, with replacement, row i with probability p_i / sum p."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self._rows_at(rng.random(batch_size) * self.tree.total, rng)

    def update_priorities(self, indices: np.ndarray, td_error: np.ndarray) -> None:
        """p_i <- max(max_k |delta_ik|, min_priority)^alpha for the transitions just learned from
        (``td_error`` (B, K), one column per critic; rows overwritten since they were sampled are
        skipped), and the running maximum grows to the largest of them."""
        priority = lap_priority(td_error, self.alpha, self.min_priority)
        keep = self.valid[indices]
        self.tree.set(indices[keep], priority[keep])
        self.max_priority = max(self.max_priority, float(priority.max(initial=0.0)))

    def reset_max_priority(self) -> None:
        """max_priority <- max_i p_i over the stored transitions (kept as it is while empty)."""
        if self.size:
            self.max_priority = self.tree.max_leaf()

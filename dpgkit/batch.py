"""A batch of transitions, as the replay samples it and the agent learns from it.

:class:`Batch` is also ``dpgkit.replay.Batch``, where it has always been imported from.
"""

from dataclasses import dataclass

import numpy as np
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """B transitions as float32 tensors: obs (B, obs_dim), action (B, action_dim), reward (B,),
    next_obs (B, obs_dim), terminated (B,) in {0, 1}.

    ``steps`` (B,): how many rewards ``reward`` sums (1, or up to n with n-step returns), so
    the bootstrap is discounted by gamma ** steps. ``weights`` (B,): importance weights of
    prioritized replay (None: uniform). ``indices``: the rows sampled, for priority updates.
    """

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    terminated: Tensor
    steps: Tensor | None = None
    weights: Tensor | None = None
    indices: np.ndarray | None = None

"""Observation normalisation: running statistics of the observations, applied where mu and Q read.

With ``normalize_obs`` the agent keeps an :class:`ObsNormalizer`, the running mean and variance
of every observation the behaviour policy acted on, merged batch by batch with
:func:`dpgkit.equations.merged_moments` (numerically stable, in float64). Every network input
then passes through :func:`dpgkit.equations.normalized_obs`, clipped to +-``obs_clip``:

- acting and evaluation: ``agent.act`` / ``deployed_act`` normalise the raw observation they are
  given with the current statistics; an evaluation only reads them (they are updated by the
  training loop alone, after each env step), so they are frozen while it runs;
- learning: the replay keeps *raw* observations and each sampled batch is normalised with the
  statistics of the moment it is drawn (:meth:`ObsNormalizer.normalize_batch`), so no stored
  transition is ever stale (the off-policy bug of normalising at storage time: SB3 #819, #693);
- the statistics are buffers of a module listed in the agent's ``modules()``, so checkpoints,
  ``dpgkit eval``, the policy file of ``save`` and the exported ONNX/TorchScript policy (raw
  observation in) hold them, and distributed actors receive them with the actor's weights.

Without ``normalize_obs`` the agent keeps an :class:`Unnormalized`, which changes nothing and
holds no tensor (a run's checkpoint is then what it was before normalisation existed).
"""

import dataclasses

import numpy as np
import torch
from torch import Tensor, nn

from dpgkit.batch import Batch
from dpgkit.config import DDPGConfig
from dpgkit.equations import merged_moments, normalized_obs


class ObsNormalizer(nn.Module):
    """s -> clip((s - mean) / sqrt(var + eps), -clip, clip), with the running statistics as
    float64 buffers ``count`` (), ``mean`` (obs_dim,), ``var`` (obs_dim,).

    Before any observation: mean 0, var 1 (the identity, up to the clip). Input and output are
    float32 (B, obs_dim); the arithmetic is float64, the statistics' precision.
    """

    def __init__(self, obs_dim: int, clip: float = DDPGConfig.obs_clip) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(obs_dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(obs_dim, dtype=torch.float64))

    def forward(self, obs: Tensor) -> Tensor:
        return normalized_obs(obs.to(torch.float64), self.mean, self.var, self.clip
                              ).to(torch.float32)

    @torch.no_grad()
    def update(self, obs: np.ndarray) -> None:
        """Merge a batch of raw observations (B, obs_dim) into the statistics."""
        batch = np.asarray(obs, dtype=np.float64).reshape(-1, self.mean.shape[0])
        if len(batch) == 0:
            return
        count, mean, var = merged_moments(float(self.count), self.mean.numpy(),
                                          self.var.numpy(), float(len(batch)),
                                          batch.mean(axis=0), batch.var(axis=0))
        self.count.fill_(count)
        self.mean.copy_(torch.from_numpy(mean))
        self.var.copy_(torch.from_numpy(var))

    def normalize_batch(self, batch: Batch) -> Batch:
        """The batch with ``obs`` and ``next_obs`` normalised by the current statistics."""
        return dataclasses.replace(batch, obs=self(batch.obs), next_obs=self(batch.next_obs))


class Unnormalized(nn.Module):
    """What the agent keeps without ``normalize_obs``: observations pass as they are."""

    def forward(self, obs: Tensor) -> Tensor:
        return obs

    def update(self, obs: np.ndarray) -> None:
        """Nothing to keep."""

    def normalize_batch(self, batch: Batch) -> Batch:
        return batch


def make_obs_norm(obs_dim: int, config: DDPGConfig) -> ObsNormalizer | Unnormalized:
    """The agent's observation normaliser: running statistics with ``normalize_obs``, else
    none."""
    return ObsNormalizer(obs_dim, config.obs_clip) if config.normalize_obs else Unnormalized()

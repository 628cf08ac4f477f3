"""Divergence checks: a value or a parameter that became NaN or infinite ends the run with
:class:`~dpgkit.errors.Diverged`, naming what diverged and the env step (``dpgkit train`` then
writes ``divergence.json`` and exits with its own code; the last good checkpoint stays)."""

from typing import Any

import numpy as np
import torch
from torch import nn

from dpgkit.errors import Diverged


def check_finite(env_steps: int, **values: Any) -> None:
    """Raise :class:`Diverged` if any of ``values`` (floats or arrays, by name) holds a NaN or
    an infinity: ``check_finite(1200, reward=r, critic_loss=3.2)``."""
    for name, value in values.items():
        if isinstance(value, float) and np.isfinite(value):
            continue
        if not np.all(np.isfinite(value)):
            bad = np.ravel(value)[~np.isfinite(np.ravel(value))][0]
            raise Diverged(f"{name.replace('_', ' ')} became {bad} at env step {env_steps}")


def check_parameters_finite(modules: dict[str, nn.Module], env_steps: int) -> None:
    """Raise :class:`Diverged` if a floating-point tensor of any module's state is not finite
    (run before a checkpoint is written, so that no checkpoint holds a diverged network)."""
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise Diverged(f"parameter {name}.{key} became non-finite by env step "
                               f"{env_steps}")

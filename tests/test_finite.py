"""The divergence checks: what they let through and what they name when they stop a run."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dpgkit.errors import Diverged
from dpgkit.finite import check_finite, check_parameters_finite


def test_finite_values_pass():
    check_finite(10, critic_loss=3.5, reward=np.array([0.0, -1.0]), obs=np.zeros((2, 3)))


@pytest.mark.parametrize("value, shown", [(math.nan, "nan"), (np.array([1.0, -np.inf]), "-inf"),
                                          (np.array([[0.0], [np.nan]]), "nan")])
def test_a_non_finite_value_names_itself_and_the_step(value, shown):
    with pytest.raises(Diverged, match=f"critic loss became {shown} at env step 1200"):
        check_finite(1200, actor_loss=0.5, critic_loss=value)


def test_a_non_finite_parameter_names_module_and_tensor():
    critic, actor = nn.Linear(2, 1), nn.Linear(2, 1)
    check_parameters_finite({"actor": actor, "critic": critic}, 50)
    with torch.no_grad():
        critic.bias[0] = math.inf
    with pytest.raises(Diverged, match="parameter critic.bias became non-finite by env step 50"):
        check_parameters_finite({"actor": actor, "critic": critic}, 50)


def test_integer_buffers_are_not_checked():
    norm = nn.BatchNorm1d(2)  # num_batches_tracked is an integer tensor
    check_parameters_finite({"norm": norm}, 1)

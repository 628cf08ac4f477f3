"""Config fields carry their own checks: each range and list of choices sits beside its field, the
CLI offers the choices, and no constructor keeps a default of its own for a setting."""

import dataclasses
import inspect

import pytest

from dpgkit.config import DDPGConfig, TD3Config
from dpgkit.errors import ConfigError
from dpgkit.fastpath import HandWrittenSteps
from dpgkit.fields import in_range
from dpgkit.flags import build_parser
from dpgkit.networks import Actor, Critic
from dpgkit.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from dpgkit.presets import preset_config
from dpgkit.prioritized import PrioritizedReplayBuffer
from dpgkit.replay import ReplayBuffer

OUTSIDE = {">= 1": 0, ">= 0": -1, "> 0": 0.0, "in [0, 1]": 1.5, "in (0, 1]": 0.0,
           "in [0, 2**62)": 2**62, "layer sizes": (64, 0)}


def test_ranges_by_hand():
    assert in_range(1, ">= 1") and not in_range(0, ">= 1")
    assert in_range(1e-9, "> 0") and not in_range(0, "> 0")
    assert in_range(0, "in [0, 1]") and in_range(1, "in [0, 1]") and not in_range(1.01, "in [0, 1]")
    assert not in_range(0, "in (0, 1]") and in_range(1, "in (0, 1]")
    assert in_range(2**62 - 1, "in [0, 2**62)") and not in_range(2**62, "in [0, 2**62)")


@pytest.mark.parametrize("field", [f for f in dataclasses.fields(TD3Config)
                                   if f.metadata["check"] or f.metadata["choices"]],
                         ids=lambda f: f.name)
def test_every_field_refuses_a_value_outside_its_own_check(field):
    bad = "nope" if field.metadata["choices"] else OUTSIDE[field.metadata["check"]]
    with pytest.raises(ConfigError, match=f"^{field.name} must "):
        preset_config("td3", **{field.name: bad})


def test_the_cli_offers_each_fields_choices():
    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    offered = {a.dest: a.choices for a in train._actions if a.choices}
    for field in dataclasses.fields(TD3Config):
        if field.name != "preset":  # --preset is not the field: it picks the starting values
            assert offered.get(field.name) == field.metadata["choices"], field.name


@pytest.mark.parametrize("constructor, parameter, field", [
    (ReplayBuffer, "n_step", "n_step"), (ReplayBuffer, "gamma", "gamma"),
    (PrioritizedReplayBuffer, "gamma", "gamma"), (PrioritizedReplayBuffer, "alpha",
                                                  "priority_alpha"),
    (PrioritizedReplayBuffer, "beta", "priority_beta"),
    (PrioritizedReplayBuffer, "epsilon", "priority_epsilon"),
    (Actor, "batch_norm", "batch_norm"), (Actor, "final_init", "final_init"),
    (Critic, "action_layer", "critic_action_layer"), (Critic, "final_init", "final_init"),
    (OrnsteinUhlenbeckNoise, "num_envs", "num_envs"), (GaussianNoise, "num_envs", "num_envs"),
    (HandWrittenSteps, "bf16", "bf16"),
])
def test_a_constructor_default_is_the_configs(constructor, parameter, field):
    default = inspect.signature(constructor).parameters[parameter].default
    assert default == getattr(DDPGConfig(), field)

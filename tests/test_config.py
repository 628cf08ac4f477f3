"""Config fields carry their own checks: each range and list of choices sits beside its field, the
CLI offers the choices, and no constructor keeps a default of its own for a setting."""

import dataclasses
import inspect

import pytest

from dpgkit.config import DDPGConfig, TD3Config
from dpgkit.config_dict import RENAMED
from dpgkit.errors import ConfigError
from dpgkit.fastpath import HandWrittenSteps
from dpgkit.fields import in_range
from dpgkit.flags import build_parser
from dpgkit.networks import Actor, Critic
from dpgkit.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from dpgkit.presets import preset_config
from dpgkit.prioritized import PrioritizedReplayBuffer
from dpgkit.replay import ReplayBuffer

OUTSIDE = {">= 1": 0, ">= 0": -1, "> 0": 0.0, "> 1": 1.0, "in [0, 1]": 1.5, "in (0, 1]": 0.0,
           "in [0, 2**62)": 2**62, "layer sizes": (64, 0), "JSON values": {"k": {1, 2}}}


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


def test_renamed_fields_are_read_under_their_old_names(tmp_path):
    """eval_every, checkpoint_every and weights_every now say their unit; config files,
    checkpoints, flags and keyword arguments that use the old names still work."""
    from dpgkit.config_dict import config_from_dict, config_to_dict
    from dpgkit.flags import build_parser

    old = {"eval_every": 500, "checkpoint_every": 0, "weights_every": 7}
    config = preset_config("ddpg", **old)
    assert (config.eval_every_steps, config.checkpoint_every_steps,
            config.publish_every_updates) == (500, 0, 7)
    saved = {**config_to_dict(preset_config("ddpg")), **old}  # a checkpoint's config, before
    for name in RENAMED.values():
        saved.pop(name)
    assert config_from_dict(saved) == config
    args = build_parser().parse_args(["train", "--eval_every", "500", "--checkpoint-every", "0",
                                      "--weights_every", "7"])
    assert (args.eval_every_steps, args.checkpoint_every_steps,
            args.publish_every_updates) == (500, 0, 7)


def test_each_algorithm_s_config_class_is_registered_by_its_name():
    """config.json's ``algorithm`` finds its class; a subclass that does not name an algorithm of
    its own (a user's, say) does not take its parent's place."""
    from dpgkit.config import CONFIG_CLASSES
    from dpgkit.config_dict import config_from_dict, config_to_dict
    from dpgkit.td7_config import TD7Config

    assert CONFIG_CLASSES == {"ddpg": DDPGConfig, "td3": TD3Config, "td7": TD7Config}
    for name, cls in CONFIG_CLASSES.items():
        config = preset_config(name)
        assert type(config) is cls and config_from_dict(config_to_dict(config)) == config

    @dataclasses.dataclass(frozen=True)
    class MyConfig(DDPGConfig):
        pass

    assert CONFIG_CLASSES["ddpg"] is DDPGConfig and MyConfig not in CONFIG_CLASSES.values()

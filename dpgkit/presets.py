"""The presets: named, checked configs to start from (docs/presets.md says why each is set so).

``preset_config("td3", seed=3)`` is the preset ``td3`` with some fields replaced, checked like any
config; ``--preset`` and ``dpgkit.DDPG(env, preset=...)`` go through it.
"""

import dataclasses
import difflib
from typing import Any

from dpgkit.config import DDPGConfig, TD3Config
from dpgkit.config_dict import current_names, field_docs
from dpgkit.errors import ConfigError
from dpgkit.td7_config import TD7Config

# Fujimoto et al. 2018's settings for their re-tuned DDPG ("Our DDPG") and for TD3.
_FUJIMOTO: dict[str, Any] = dict(
    gamma=0.99, actor_hidden=(400, 300), critic_hidden=(400, 300), critic_action_layer=0,
    final_init=0.0, actor_lr=1e-3, critic_lr=1e-3, tau=5e-3, batch_size=100,
    replay_size=1_000_000, warmup_steps=1_000, update_during_warmup=True,
    exploration_noise="gaussian", gaussian_sigma=0.1,
)


PRESETS: dict[str, DDPGConfig] = {
    # Tuned for Pendulum-v1 (docs/presets.md explains each choice).
    "ddpg": DDPGConfig(),
    # Lillicrap et al. 2016, supplementary section 7, as written.
    "ddpg-paper": DDPGConfig(
        preset="ddpg-paper",
        gamma=0.99,
        actor_hidden=(400, 300),
        critic_hidden=(400, 300),
        critic_action_layer=1,
        batch_norm=True,
        final_init=3e-3,
        actor_lr=1e-4,
        critic_lr=1e-3,
        critic_weight_decay=1e-2,
        tau=1e-3,
        batch_size=64,
        replay_size=1_000_000,
        warmup_steps=0,
        exploration_noise="ou",
        ou_theta=0.15,
        ou_sigma=0.2,
        ou_dt=1.0,
    ),
    # The practice notebook (pg-is-all-you-need 03.DDPG), with a true OU process.
    "ddpg-tutorial": DDPGConfig(
        preset="ddpg-tutorial",
        total_env_steps=50_000,
        gamma=0.99,
        actor_hidden=(128, 128),
        critic_hidden=(128, 128),
        actor_lr=3e-4,
        critic_lr=1e-3,
        tau=5e-3,
        batch_size=128,
        replay_size=100_000,
        warmup_steps=10_000,
        exploration_noise="ou",
        ou_theta=1.0,
        ou_sigma=0.1,
        ou_dt=1.0,
    ),
    # Fujimoto et al. 2018, "Our DDPG" (warm-up: 10,000 steps on HalfCheetah and Ant, else 1,000),
    # but no updates during the warm-up: measured, they halve its return at 100k and 300k steps on
    # HalfCheetah (docs/presets.md); --update_during_warmup true is the authors' schedule.
    "our-ddpg": DDPGConfig(preset="our-ddpg", **{**_FUJIMOTO, "update_during_warmup": False}),
    # Fujimoto et al. 2018, TD3: "our-ddpg" plus twin critics, target smoothing, delayed updates.
    "td3": TD3Config(preset="td3", target_noise=0.2, target_noise_clip=0.5, policy_delay=2,
                     **_FUJIMOTO),
    # Fujimoto et al. 2023, TD7 (sfujim/TD7: TD7.py Hyperparameters, main.py): TD3 plus SALE,
    # LAP, target clipping and policy checkpoints; docs/presets.md gives each setting's source.
    "td7": TD7Config(
        preset="td7",
        gamma=0.99,
        actor_hidden=(256,),
        critic_hidden=(256,),
        zs_dim=256,
        encoder_hidden=256,
        encoder_activation="elu",
        critic_activation="elu",
        actor_activation="relu",
        actor_lr=3e-4,
        critic_lr=3e-4,
        encoder_lr=3e-4,
        batch_size=256,
        replay_size=1_000_000,
        warmup_steps=25_000,
        update_during_warmup=False,
        fast_update=False,
        exploration_noise="gaussian",
        gaussian_sigma=0.1,
        target_noise=0.2,
        target_noise_clip=0.5,
        policy_delay=2,
        target_update_every_updates=250,
        lap_alpha=0.4,
        lap_min_priority=1.0,
        policy_checkpoints=True,
        checkpoint_early_episodes=1,
        checkpoint_late_episodes=20,
        checkpoint_late_after_updates=750_000,
        checkpoint_reset_weight=0.9,
        eval_every_steps=5_000,
        eval_episodes=10,
    ),
    # The deck's off-policy deterministic actor-critic: no replay, no targets, plain SGD.
    "dpg-online": DDPGConfig(
        preset="dpg-online",
        optimizer="sgd",
        actor_lr=1e-4,
        critic_lr=1e-3,
        tau=1.0,
        batch_size=1,
        replay_size=1,
        warmup_steps=0,
    ),
}


def preset_config(name: str, **overrides: Any) -> DDPGConfig:
    """The preset ``name`` with some fields replaced, checked like any config."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    preset, overrides = PRESETS[name], current_names(overrides)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(preset)}
    for cls in (TD3Config, TD7Config):  # a setting of another algorithm: name it
        other = unknown & {f.name for f in dataclasses.fields(cls)}
        if other:
            raise ConfigError(f"preset {name} ({preset.algorithm}) has no setting "
                              f"{', '.join(sorted(other))}: that is a {cls.algorithm.upper()} "
                              f"setting, use a {cls.algorithm} preset (--preset {cls.algorithm})")
    if unknown:
        hints = []
        aliases = {"steps": "total_env_steps", "env": "env_id"}  # the CLI's short flags
        for key in sorted(unknown):
            close = [aliases[key]] if key in aliases else difflib.get_close_matches(
                key, list(field_docs()), n=1, cutoff=0.6)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        raise ConfigError(f"there is no setting {', '.join(hints)}: `dpgkit train --help` lists "
                          "them all")
    return dataclasses.replace(preset, **overrides)

"""TD7's settings (Fujimoto et al. 2023): TD3's plus those of its four changes, one frozen
dataclass beside :class:`dpgkit.config.TD3Config`, its fields made the same way
(:func:`dpgkit.fields.setting`). The ``td7`` preset is in :mod:`dpgkit.presets`;
docs/presets.md gives each setting's source."""

from dataclasses import dataclass
from typing import ClassVar

from dpgkit.config import TD3Config
from dpgkit.errors import ConfigError
from dpgkit.fields import setting


@dataclass(frozen=True)
class TD7Config(TD3Config):
    """TD3's settings plus those of TD7's four changes (Fujimoto et al. 2023): SALE, LAP, target
    clipping, policy checkpoints. TD7's networks have one width each (every layer): ``actor_hidden``
    and ``critic_hidden`` give one size. ``tau`` is unused (TD7 copies its targets every
    ``target_update_every_updates`` updates) and TD7 runs on the autograd path (``fast_update``
    does not apply)."""

    algorithm: ClassVar[str] = "td7"

    # TD7's own defaults for two of DDPG's fields (same docs): one width for every layer
    actor_hidden: tuple[int, ...] = setting((256,), "Actor hidden layer sizes, e.g. 256,256.",
                                            check="layer sizes")
    critic_hidden: tuple[int, ...] = setting((256,), "Critic hidden layer sizes.",
                                             check="layer sizes")
    zs_dim: int = setting(256, "SALE: size of the embeddings zs = f(s) and zsa = g(zs, a).",
                          check=">= 1")
    encoder_hidden: int = setting(256, "SALE: units of each hidden layer of f and of g.",
                                  check=">= 1")
    encoder_lr: float = setting(3e-4, "SALE: learning rate of the encoders f and g.", check="> 0")
    encoder_activation: str = setting("elu", "SALE: activation of the encoders' hidden layers.",
                                      choices=("elu", "relu"))
    critic_activation: str = setting("elu", "TD7: activation of the critics' hidden layers.",
                                     choices=("elu", "relu"))
    actor_activation: str = setting("relu", "TD7: activation of the actor's hidden layers.",
                                    choices=("elu", "relu"))
    target_update_every_updates: int = setting(
        250, "TD7: copy every target network (and the fixed encoders, and the value range) "
        "every this many updates (a hard update; tau is unused).", check=">= 1")
    lap_alpha: float = setting(0.4, "LAP: priority exponent alpha, p = max(|delta|, "
                               "lap_min_priority)^alpha.", check=">= 0")
    lap_min_priority: float = setting(
        1.0, "LAP: floor of |delta| in the priority, and the Huber loss's threshold.", check="> 0")
    policy_checkpoints: bool = setting(
        True, "TD7: train in bursts at episode ends and evaluate/deploy the checkpointed policy; "
        "false: one update per env step, the current policy evaluated.")
    checkpoint_early_episodes: int = setting(
        1, "Policy checkpoints: episodes that assess a policy before "
        "checkpoint_late_after_updates.", check=">= 1")
    checkpoint_min_steps: int = setting(
        1000, "Policy checkpoints: an assessment also lasts at least this many env steps (more "
        "episodes where they are short: 5 on Pendulum; one 1,000-step MuJoCo episode as the "
        "authors; 0: episodes only, as the authors' code).", check=">= 0")
    checkpoint_late_episodes: int = setting(
        20, "Policy checkpoints: episodes that assess a policy from "
        "checkpoint_late_after_updates on.", check=">= 1")
    checkpoint_late_after_updates: int = setting(
        750_000, "Policy checkpoints: the update count where the assessment grows to "
        "checkpoint_late_episodes and the checkpoint's score is reweighted.", check=">= 0")
    checkpoint_reset_weight: float = setting(
        0.9, "Policy checkpoints: the checkpoint's score (its worst return) drops by the "
        "fraction 1 - this of its size, once, at checkpoint_late_after_updates.",
        check="in [0, 1]")

    def __post_init__(self) -> None:
        super().__post_init__()
        rules = [
            (len(self.actor_hidden) == 1 and len(self.critic_hidden) == 1,
             "TD7's actor and critic have one width each: give one size, e.g. --actor_hidden "
             f"256 --critic_hidden 256 (got {self.actor_hidden} and {self.critic_hidden})"),
            (not (self.prioritized or self.n_step > 1 or self.batch_norm or self.bf16
                  or self.update_during_warmup or self.update_at_episode_end),
             "TD7 has its own replay (LAP) and schedule and runs on the autograd path: it takes "
             "no --prioritized, --n_step, --batch_norm, --bf16, --update_during_warmup or "
             "--update_at_episode_end"),
            (self.exploration_noise != "param" and not self.actor_layer_norm,
             "TD7's actor has its own layers (SALE's embedding in, AvgL1Norm): it takes no "
             "--exploration_noise param or --actor_layer_norm"),
            (self.actors == 0, "TD7 does not run with distributed actors (--actors): its "
             "policy checkpoints train in bursts at the learner's own episode ends; use "
             "--num_envs for several envs"),
        ]
        for ok, message in rules:
            if not ok:
                raise ConfigError(message)

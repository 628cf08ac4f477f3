"""Every setting of a run, in one frozen, typed dataclass: each field with its default, its
documentation and its own check (:func:`dpgkit.fields.setting`).

Defaults live here and nowhere else: the agent, the training loop and the CLI all read a
:class:`DDPGConfig`, and constructors that offer a default for one of its settings name the
field's (``DDPGConfig.gamma``). The CLI builds its ``--flags`` (same names as the fields), their
help text and their choices from the fields, and the run directory's ``config.json`` holds the
resolved config under the same keys. The named presets are in :mod:`dpgkit.presets`.
"""

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from dpgkit.errors import ConfigError
from dpgkit.fields import check_fields, setting

CONFIG_CLASSES: dict[str, type["DDPGConfig"]] = {}
"""Each algorithm's config class by its ``algorithm`` name (what ``config.json`` says), filled as
the classes are defined: ``ddpg`` and ``td3`` here, ``td7`` in :mod:`dpgkit.td7_config` (importing
``dpgkit`` defines them all)."""


@dataclass(frozen=True)
class DDPGConfig:
    """The settings of a DDPG run. The defaults are the ``ddpg`` preset (docs/presets.md)."""

    algorithm: ClassVar[str] = "ddpg"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that names its own ``algorithm`` joins :data:`CONFIG_CLASSES`."""
        super().__init_subclass__(**kwargs)
        if "algorithm" in cls.__dict__:
            CONFIG_CLASSES[cls.algorithm] = cls

    # --- the run ---
    preset: str = setting("ddpg", "Name of the preset these settings start from (recorded).")
    env_id: str = setting("Pendulum-v1", "Gymnasium environment id, e.g. Pendulum-v1.")
    env_kwargs: dict[str, Any] = setting(
        {}, "Keyword arguments to make the env with, as JSON or key=value pairs (g=9.81 "
        "max_episode_steps=100): an id's gym.make arguments, or a class's constructor's.",
        check="JSON values")
    seed: int = setting(0, "Seed for every random number generator of the run.",
                        check="in [0, 2**62)")
    total_env_steps: int = setting(20_000, "Environment steps to train for.", check=">= 1")
    eval_every_steps: int = setting(
        2_000, "Evaluate the policy (no noise) every this many env steps.", check=">= 1")
    eval_episodes: int = setting(10, "Episodes per evaluation, each from a random start state.",
                                 check=">= 1")
    torch_threads: int = setting(
        1, "Threads torch may use (1 is fastest for small networks; more threads than idle "
        "cores slow a run many times over, and more than the machine's cores get a warning). "
        "A resume may change it.", check=">= 1")
    flush_denormal: bool = setting(
        True, "Flush subnormal floats to zero on the CPU (torch.set_flush_denormal): Adam's "
        "moments of weights whose gradient stays 0 decay into that range, where x86 arithmetic "
        "is 10x+ slower. Numbers below 1.2e-38 become 0. CPU: x86 with SSE3 (every x86-64); "
        "where the CPU cannot flush, torch ignores it.")
    checkpoint_every_steps: int = setting(
        10_000, "Write a checkpoint (the whole run, for --resume) every this many env steps; "
        "0: only at the end.", check=">= 0")
    keep_checkpoints: int = setting(2, "How many of the newest checkpoints to keep.", check=">= 1")
    num_envs: int = setting(1, "Environments stepped together; env steps count transitions.",
                            check=">= 1")
    vector_mode: str = setting("sync", "How the envs run: sync (one process) or async.",
                               choices=("sync", "async"))
    max_episode_steps: int = setting(
        0, "Cut every episode (training and evaluation) at this many steps, as truncation "
        "(it bootstraps), for any env, a class of yours too; 0: the env's own limit, and for an "
        "env with none, 1000 (episode_limit.DEFAULT_EPISODE_STEPS), with a warning when it cuts.",
        check=">= 0")
    target_return: float | None = setting(
        None, "Stop the run once an evaluation's mean return reaches this (Pendulum-v1: -200); "
        "summary.json records when it was first reached (target_reached_at_env_steps, "
        "target_reached_at_seconds).")
    stop_at_target: bool = setting(
        True, "With target_return: end the run when the target is reached; false: train the "
        "whole budget and only record when it was reached.")

    # --- observations ---
    normalize_obs: bool = setting(
        False, "Normalise observations by their running mean and variance (over every "
        "observation acted on), clipped to +-obs_clip: in acting, learning (the replay keeps "
        "raw observations, normalised when sampled), evaluation and the exported policy.")
    obs_clip: float = setting(10.0, "With normalize_obs: normalised observations are clipped "
                              "to [-obs_clip, obs_clip].", check="> 0")

    # --- networks ---
    actor_hidden: tuple[int, ...] = setting((256, 256), "Actor hidden layer sizes, e.g. 256,256.",
                                            check="layer sizes")
    critic_hidden: tuple[int, ...] = setting((256, 256), "Critic hidden layer sizes.",
                                             check="layer sizes")
    critic_action_layer: int = setting(
        0, "Hidden layer of the critic whose input includes the action (0: concat(s, a) at input)."
    )
    actor_layer_norm: bool = setting(
        False, "Layer-normalise the actor's hidden layers (Linear, LayerNorm, ReLU), as "
        "Plappert et al. advise with parameter noise; runs on the autograd path.")
    batch_norm: bool = setting(
        False, "Batch-normalise the state input, actor layers and critic layers before the action."
    )
    final_init: float = setting(
        3e-3, "Final layers start in U(-final_init, final_init); 0: U(+-1/sqrt(fan_in)).",
        check="in [0, 1]", hint="try 3e-3 (0: PyTorch's default)")

    # --- optimisation ---
    optimizer: str = setting("adam", "Optimizer of actor and critic: adam or sgd.",
                             choices=("adam", "sgd"))
    actor_lr: float = setting(1e-3, "Actor learning rate.", check="> 0", hint="try 1e-3")
    critic_lr: float = setting(1e-3, "Critic learning rate.", check="> 0", hint="try 1e-3")
    critic_weight_decay: float = setting(0.0, "L2 weight decay on the critic's parameters.",
                                         check=">= 0")
    gamma: float = setting(0.98, "Discount factor, in [0, 1].", check="in [0, 1]", hint="try 0.99")
    tau: float = setting(5e-3, "Soft target update weight on the online net, in (0, 1]; 1 = copy.",
                         check="in (0, 1]", hint="try 0.005 (1 = hard copy)")
    batch_size: int = setting(256, "Transitions per update.", check=">= 1")
    replay_size: int = setting(1_000_000, "Replay buffer capacity (transitions).", check=">= 1")
    warmup_steps: int = setting(
        1_000, "First env steps act uniformly at random in [-1, 1] (and make no update unless "
        "update_during_warmup).",
        check=">= 0")
    update_during_warmup: bool = setting(
        False, "Also update during warm-up, from the first full batch on (the TD3 authors' code "
        "schedule, on in td3; off in our-ddpg, where it halved the return on HalfCheetah: "
        "docs/presets.md).")
    updates_per_step: float = setting(
        1.0, "Updates (critic, actor, targets) per env step; fractions such as 0.5 allowed.",
        check="> 0")
    update_at_episode_end: bool = setting(
        False, "Update in a burst at each training episode's end, updates_per_step per env step "
        "of the episode (rounded down), instead of after each env step: the schedule of the TD3 "
        "authors' 2018 code (main.py). With update_during_warmup, warm-up episodes get their "
        "burst too.")

    fast_update: bool = setting(
        True, "Compute the gradient steps by hand (dpgkit/fastpath.py) instead of through "
        "autograd: the same update to float precision, about 1.4x faster; off with batch_norm. "
        "CPU: any (private torch operators it uses fall back to public ones where missing: "
        "dpgkit/torchops.py).")
    bf16: bool = setting(
        False, "Run the hidden-to-hidden matrix products in bfloat16; parameters, Adam, Q and mu "
        "stay float32. Fast path only. CPU: pays only with AVX-512 BF16 or AMX (Intel Cooper "
        "Lake, Sapphire Rapids and later; AMD Zen 4 and later), through oneDNN, and with "
        "torch_threads 1; any other CPU runs the same bfloat16 arithmetic through torch's own "
        "kernels, slower than float32 (with a warning), so a bf16 run resumes anywhere.")

    # --- replay options ---
    n_step: int = setting(
        1, "Rewards per sampled transition: the n-step return, bootstrapped with gamma^n "
        "(shorter at an episode's end).", check=">= 1")
    prioritized: bool = setting(
        False, "Prioritized replay (proportional): draw transitions by |TD error|^alpha.")
    priority_alpha: float = setting(0.6, "Prioritized replay: exponent alpha of the priorities.",
                                    check=">= 0")
    priority_beta: float = setting(
        0.4, "Prioritized replay: importance-weight exponent beta at the start; it rises "
        "linearly to priority_beta_end over the run.", check="in [0, 1]")
    priority_beta_end: float = setting(
        1.0, "Prioritized replay: importance-weight exponent beta at the end of the run.",
        check="in [0, 1]")
    priority_epsilon: float = setting(
        1e-6, "Prioritized replay: added to |TD error| so that every transition can be drawn.",
        check="> 0")

    # --- exploration ---
    exploration_noise: str = setting(
        "gaussian", "Exploration: ou, gaussian or none (noise added to mu(s)), or param (a "
        "perturbed copy of the actor acts: parameter-space noise, dpgkit/param_noise.py).",
        choices=("ou", "gaussian", "none", "param"))
    ou_theta: float = setting(0.15, "Ornstein-Uhlenbeck mean-reversion rate theta.", check=">= 0")
    ou_sigma: float = setting(0.2, "Ornstein-Uhlenbeck diffusion sigma.", check=">= 0")
    ou_mu: float = setting(0.0, "Ornstein-Uhlenbeck long-run mean mu.")
    ou_dt: float = setting(1e-2, "Ornstein-Uhlenbeck time step dt per env step.", check="> 0")
    gaussian_sigma: float = setting(
        0.1, "Standard deviation of Gaussian exploration noise; with param noise, the target "
        "RMS distance delta between perturbed and unperturbed actions.", check=">= 0")
    param_noise_initial_sigma: float = setting(
        0.05, "Parameter noise: initial std of the Gaussian added to every actor weight and "
        "bias (adapted after).", check="> 0")
    param_noise_alpha: float = setting(
        1.01, "Parameter noise: the adaptive factor alpha (sigma * alpha while the action "
        "distance is <= delta, else sigma / alpha).", check="> 1")
    param_noise_adapt_every_steps: int = setting(
        10, "Parameter noise: adapt sigma every this many acting steps, on the recent states.",
        check=">= 1")
    param_noise_states: int = setting(
        256, "Parameter noise: recent states kept to measure the action distance on.",
        check=">= 1")
    noise_decay: str = setting(
        "none", "Schedule of the noise scale (OU sigma or Gaussian std): none, linear or "
        "exponential.", choices=("none", "linear", "exponential"))
    noise_decay_start: int = setting(0, "Env step where the noise scale starts to decay.",
                                     check=">= 0")
    noise_decay_end: int = setting(0, "Env step where the noise scale reaches its final value.",
                                   check=">= 0")
    noise_final_scale: float = setting(
        1.0, "Noise scale at noise_decay_end, as a fraction of the initial one, in (0, 1].",
        check="in (0, 1]")

    # --- distributed (Ape-X-style actors on Ray; docs/distributed.md) ---
    actors: int = setting(
        0, "Ray actors collecting experience for one learner (Ape-X style); 0: one process, no "
        "Ray. Needs pip install 'dpgkit[distributed]'.", check=">= 0", hint="0 runs without Ray")
    ray_address: str = setting(
        "", "Ray cluster to join with actors > 0: auto or HOST:PORT; empty: start a local Ray "
        "listening on loopback only.")
    actor_cpus: float = setting(
        1.0, "CPUs Ray reserves for each actor; fractions (0.25) pack several actors per core.",
        check="> 0", hint="try 1 or 0.25")
    actor_batch_steps: int = setting(
        50, "Env steps per actor request; each returns actor_batch_steps * num_envs transitions.",
        check=">= 1")
    max_in_flight: int = setting(
        2, "Collect requests in flight per actor (backpressure): the actor starts the next batch "
        "while the learner stores the last.", check=">= 1")
    publish_every_updates: int = setting(
        50, "Publish the learner's actor weights to the actors (one ray.put) every this many "
        "updates.", check=">= 1")
    actor_noise_spread: float = setting(
        1.0, "Actor i of N explores with the noise scale times actor_noise_spread ** (i / (N - "
        "1)) (Ape-X's spread of exploration); 1: all alike, 0.1: from full down to a tenth.",
        check="> 0", hint="try 1 (no spread)")

    def __post_init__(self) -> None:
        check_fields(self)
        check_rules(self)

    def env_arguments(self) -> dict[str, Any]:
        """What :func:`dpgkit.envs.make_env` makes the run's env with: ``env_kwargs``, and
        ``max_episode_steps`` where it is set."""
        if self.max_episode_steps:
            return {**self.env_kwargs, "max_episode_steps": self.max_episode_steps}
        return self.env_kwargs


CONFIG_CLASSES[DDPGConfig.algorithm] = DDPGConfig


@dataclass(frozen=True)
class TD3Config(DDPGConfig):
    """DDPG's settings plus those of TD3's three changes (Fujimoto et al. 2018)."""

    algorithm: ClassVar[str] = "td3"

    target_noise: float = setting(
        0.2, "TD3 target smoothing: std of the noise added to mu'(s') per action element.",
        check=">= 0")
    target_noise_clip: float = setting(
        0.5, "TD3 target smoothing: the noise is clipped to [-target_noise_clip, "
        "target_noise_clip].", check=">= 0")
    policy_delay: int = setting(
        2, "TD3 delay: actor and target updates happen once every policy_delay critic updates.",
        check=">= 1")


def check_rules(c: DDPGConfig) -> None:
    """The rules that tie fields together (each field's own range is checked beside it)."""
    rules = [
        (c.env_id != "", "env_id is empty: give a Gymnasium id such as --env Pendulum-v1"),
        ("render_mode" not in c.env_kwargs, "env_kwargs may not set render_mode: dpgkit sets it "
         "where it renders (dpgkit eval --video, --render)"),
        (0 <= c.critic_action_layer < len(c.critic_hidden),
         f"critic_action_layer must be in [0, {len(c.critic_hidden) - 1}] for critic_hidden="
         f"{c.critic_hidden}, got {c.critic_action_layer}"),
        (c.batch_size <= c.replay_size,
         f"batch_size ({c.batch_size}) is larger than replay_size ({c.replay_size}): "
         "lower --batch_size or raise --replay_size"),
        (not (c.batch_norm and c.batch_size < 2),
         "batch_norm needs batch_size >= 2 (batch statistics of one sample are undefined)"),
        (not c.bf16 or (c.fast_update and not c.batch_norm),
         "bf16 runs on the fast path only: it needs --fast_update true and --batch_norm false"),
        (c.noise_decay_start <= c.noise_decay_end,
         f"need 0 <= noise_decay_start <= noise_decay_end, got {c.noise_decay_start} and "
         f"{c.noise_decay_end}"),
        (not (c.exploration_noise == "param" and c.batch_norm),
         "parameter noise perturbs an actor without batch norm: use --actor_layer_norm true "
         "instead of --batch_norm"),
        (c.ray_address == "" or c.actors > 0,
         f"ray_address ({c.ray_address!r}) is used only with actors > 0: add --actors N"),
        (not (c.max_episode_steps and "max_episode_steps" in c.env_kwargs),
         "max_episode_steps is given twice (as a setting and in env_kwargs): give it once"),
        (not (c.update_at_episode_end and c.actors > 0),
         "update_at_episode_end needs the learner's own episodes: distributed actors (--actors) "
         "send transitions, not episodes; drop one of the two"),
        (c.target_return is None or math.isfinite(c.target_return),
         f"target_return must be a finite number, got {c.target_return}"),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(message)

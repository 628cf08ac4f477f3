"""Every setting of a run, in one frozen, typed dataclass; the presets are named instances of it.

Defaults live here and nowhere else: the agent, the training loop and the CLI all read a
:class:`DDPGConfig`. Each field's ``doc`` metadata is its documentation; the CLI builds its
``--flags`` (same names as the fields) and their help text from it, and the run directory's
``config.json`` holds the resolved config under the same keys.
"""

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dpgkit.errors import ConfigError


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class DDPGConfig:
    """The settings of a DDPG run. The defaults are the ``ddpg`` preset (docs/presets.md)."""

    algorithm: ClassVar[str] = "ddpg"

    # --- the run ---
    preset: str = _setting("ddpg", "Name of the preset these settings start from (recorded).")
    env_id: str = _setting("Pendulum-v1", "Gymnasium environment id, e.g. Pendulum-v1.")
    env_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"doc": (
        "Keyword arguments to make the env with, as JSON or key=value pairs (g=9.81 "
        "max_episode_steps=100): an id's gym.make arguments, or a class's constructor's.")})
    seed: int = _setting(0, "Seed for every random number generator of the run.")
    total_env_steps: int = _setting(20_000, "Environment steps to train for.")
    eval_every: int = _setting(2_000, "Evaluate the policy (no noise) every this many env steps.")
    eval_episodes: int = _setting(10, "Episodes per evaluation, each from a random start state.")
    torch_threads: int = _setting(1, "Threads torch may use (1 is fastest for small networks).")
    flush_denormal: bool = _setting(
        True, "Flush subnormal floats to zero on the CPU (torch.set_flush_denormal): Adam's "
        "moments of weights whose gradient stays 0 decay into that range, where x86 arithmetic "
        "is 10x+ slower. Numbers below 1.2e-38 become 0. CPU: x86 with SSE3 (every x86-64); "
        "where the CPU cannot flush, torch ignores it.")
    checkpoint_every: int = _setting(
        10_000, "Write a checkpoint (the whole run, for --resume) every this many env steps; "
        "0: only at the end.")
    keep_checkpoints: int = _setting(2, "How many of the newest checkpoints to keep.")
    num_envs: int = _setting(1, "Environments stepped together; env steps count transitions.")
    vector_mode: str = _setting("sync", "How the envs run: sync (one process) or async.")

    # --- networks ---
    actor_hidden: tuple[int, ...] = _setting((256, 256), "Actor hidden layer sizes, e.g. 256,256.")
    critic_hidden: tuple[int, ...] = _setting((256, 256), "Critic hidden layer sizes.")
    critic_action_layer: int = _setting(
        0, "Hidden layer of the critic whose input includes the action (0: concat(s, a) at input)."
    )
    batch_norm: bool = _setting(
        False, "Batch-normalise the state input, actor layers and critic layers before the action."
    )
    final_init: float = _setting(
        3e-3, "Final layers start in U(-final_init, final_init); 0: U(+-1/sqrt(fan_in))."
    )

    # --- optimisation ---
    optimizer: str = _setting("adam", "Optimizer of actor and critic: adam or sgd.")
    actor_lr: float = _setting(1e-3, "Actor learning rate.")
    critic_lr: float = _setting(1e-3, "Critic learning rate.")
    critic_weight_decay: float = _setting(0.0, "L2 weight decay on the critic's parameters.")
    gamma: float = _setting(0.98, "Discount factor, in [0, 1].")
    tau: float = _setting(5e-3, "Soft target update weight on the online net, in (0, 1]; 1 = copy.")
    batch_size: int = _setting(256, "Transitions per update.")
    replay_size: int = _setting(1_000_000, "Replay buffer capacity (transitions).")
    warmup_steps: int = _setting(
        1_000, "First env steps act uniformly at random in [-1, 1] (and make no update unless "
        "update_during_warmup)."
    )
    update_during_warmup: bool = _setting(
        False, "Also update during warm-up, from the first full batch on (the TD3 authors' code "
        "schedule, on in our-ddpg and td3; docs/presets.md has what it does on HalfCheetah).")
    updates_per_step: float = _setting(
        1.0, "Updates (critic, actor, targets) per env step; fractions such as 0.5 allowed."
    )

    fast_update: bool = _setting(
        True, "Compute the gradient steps by hand (dpgkit/fastpath.py) instead of through "
        "autograd: the same update to float precision, about 1.4x faster; off with batch_norm. "
        "CPU: any (private torch operators it uses fall back to public ones where missing: "
        "dpgkit/torchops.py).")
    bf16: bool = _setting(
        False, "Run the hidden-to-hidden matrix products in bfloat16; parameters, Adam, Q and mu "
        "stay float32. Fast path only. CPU: pays only with AVX-512 BF16 or AMX (Intel Cooper "
        "Lake, Sapphire Rapids and later; AMD Zen 4 and later), through oneDNN, and with "
        "torch_threads 1; any other CPU runs the same bfloat16 arithmetic through torch's own "
        "kernels, slower than float32 (with a warning), so a bf16 run resumes anywhere.")

    # --- replay options ---
    n_step: int = _setting(
        1, "Rewards per sampled transition: the n-step return, bootstrapped with gamma^n "
        "(shorter at an episode's end).")
    prioritized: bool = _setting(
        False, "Prioritized replay (proportional): draw transitions by |TD error|^alpha.")
    priority_alpha: float = _setting(0.6, "Prioritized replay: exponent alpha of the priorities.")
    priority_beta: float = _setting(
        0.4, "Prioritized replay: importance-weight exponent beta at the start; it rises "
        "linearly to priority_beta_end over the run.")
    priority_beta_end: float = _setting(
        1.0, "Prioritized replay: importance-weight exponent beta at the end of the run.")
    priority_epsilon: float = _setting(
        1e-6, "Prioritized replay: added to |TD error| so that every transition can be drawn.")

    # --- exploration ---
    exploration_noise: str = _setting("gaussian", "Noise added to mu(s): ou, gaussian or none.")
    ou_theta: float = _setting(0.15, "Ornstein-Uhlenbeck mean-reversion rate theta.")
    ou_sigma: float = _setting(0.2, "Ornstein-Uhlenbeck diffusion sigma.")
    ou_mu: float = _setting(0.0, "Ornstein-Uhlenbeck long-run mean mu.")
    ou_dt: float = _setting(1e-2, "Ornstein-Uhlenbeck time step dt per env step.")
    gaussian_sigma: float = _setting(0.1, "Standard deviation of Gaussian exploration noise.")
    noise_decay: str = _setting(
        "none", "Schedule of the noise scale (OU sigma or Gaussian std): none, linear or "
        "exponential.")
    noise_decay_start: int = _setting(0, "Env step where the noise scale starts to decay.")
    noise_decay_end: int = _setting(0, "Env step where the noise scale reaches its final value.")
    noise_final_scale: float = _setting(
        1.0, "Noise scale at noise_decay_end, as a fraction of the initial one, in (0, 1].")

    # --- distributed (Ape-X-style actors on Ray; docs/distributed.md) ---
    actors: int = _setting(
        0, "Ray actors collecting experience for one learner (Ape-X style); 0: one process, no "
        "Ray. Needs pip install 'dpgkit[distributed]'.")
    ray_address: str = _setting(
        "", "Ray cluster to join with actors > 0: auto or HOST:PORT; empty: start a local Ray "
        "listening on loopback only.")
    actor_cpus: float = _setting(
        1.0, "CPUs Ray reserves for each actor; fractions (0.25) pack several actors per core.")
    actor_batch_steps: int = _setting(
        50, "Env steps per actor request; each returns actor_batch_steps * num_envs transitions.")
    max_in_flight: int = _setting(
        2, "Collect requests in flight per actor (backpressure): the actor starts the next batch "
        "while the learner stores the last.")
    weights_every: int = _setting(
        50, "Publish the learner's actor weights to the actors (one ray.put) every this many "
        "updates.")
    actor_noise_spread: float = _setting(
        1.0, "Actor i of N explores with the noise scale times actor_noise_spread ** (i / (N - "
        "1)) (Ape-X's spread of exploration); 1: all alike, 0.1: from full down to a tenth.")

    def __post_init__(self) -> None:
        _check_types(self)
        _check_ranges(self)


@dataclass(frozen=True)
class TD3Config(DDPGConfig):
    """DDPG's settings plus those of TD3's three changes (Fujimoto et al. 2018)."""

    algorithm: ClassVar[str] = "td3"

    target_noise: float = _setting(
        0.2, "TD3 target smoothing: std of the noise added to mu'(s') per action element.")
    target_noise_clip: float = _setting(
        0.5, "TD3 target smoothing: the noise is clipped to [-target_noise_clip, "
        "target_noise_clip].")
    policy_delay: int = _setting(
        2, "TD3 delay: actor and target updates happen once every policy_delay critic updates.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.target_noise >= 0, f"target_noise must be >= 0, got {self.target_noise}")
        _check(self.target_noise_clip >= 0,
               f"target_noise_clip must be >= 0, got {self.target_noise_clip}")
        _check(self.policy_delay >= 1, f"policy_delay must be >= 1, got {self.policy_delay}")


CONFIG_CLASSES: dict[str, type[DDPGConfig]] = {"ddpg": DDPGConfig, "td3": TD3Config}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_ranges(c: DDPGConfig) -> None:
    _check(c.env_id != "", "env_id is empty: give a Gymnasium id such as --env Pendulum-v1")
    _check(0 <= c.seed < 2**62, f"seed must be in [0, 2**62), got {c.seed}")
    _check("render_mode" not in c.env_kwargs, "env_kwargs may not set render_mode: dpgkit sets "
           "it where it renders (dpgkit eval --video, --render)")
    _check(_is_json(c.env_kwargs), f"env_kwargs must hold JSON values (numbers, strings, true/"
           f"false, null, lists, objects), got {c.env_kwargs!r}")
    for name in ("total_env_steps", "eval_every", "eval_episodes", "torch_threads", "num_envs",
                 "batch_size", "replay_size"):
        value = getattr(c, name)
        _check(value >= 1, f"{name} must be >= 1, got {value}")
    _check(c.warmup_steps >= 0, f"warmup_steps must be >= 0, got {c.warmup_steps}")
    _check(c.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {c.checkpoint_every}")
    _check(c.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {c.keep_checkpoints}")
    for name in ("actor_hidden", "critic_hidden"):
        sizes = getattr(c, name)
        _check(len(sizes) >= 1 and all(n >= 1 for n in sizes),
               f"{name} must list one or more positive layer sizes (e.g. 256,256), got {sizes}")
    _check(0 <= c.critic_action_layer < len(c.critic_hidden),
           f"critic_action_layer must be in [0, {len(c.critic_hidden) - 1}] for critic_hidden="
           f"{c.critic_hidden}, got {c.critic_action_layer}")
    _check(0 <= c.final_init <= 1,
           f"final_init must be in [0, 1], got {c.final_init}: try 3e-3 (0: PyTorch's default)")
    _check(c.optimizer in ("adam", "sgd"), f"optimizer must be adam or sgd, got {c.optimizer!r}")
    for name in ("actor_lr", "critic_lr"):
        value = getattr(c, name)
        _check(value > 0, f"{name} must be > 0, got {value}: try 1e-3")
    _check(c.critic_weight_decay >= 0,
           f"critic_weight_decay must be >= 0, got {c.critic_weight_decay}")
    _check(0 <= c.gamma <= 1, f"gamma must be in [0, 1], got {c.gamma}: try 0.99")
    _check(0 < c.tau <= 1, f"tau must be in (0, 1], got {c.tau}: try 0.005 (1 = hard copy)")
    _check(c.batch_size <= c.replay_size,
           f"batch_size ({c.batch_size}) is larger than replay_size ({c.replay_size}): "
           "lower --batch_size or raise --replay_size")
    _check(not (c.batch_norm and c.batch_size < 2),
           "batch_norm needs batch_size >= 2 (batch statistics of one sample are undefined)")
    _check(not c.bf16 or (c.fast_update and not c.batch_norm),
           "bf16 runs on the fast path only: it needs --fast_update true and --batch_norm false")
    _check(c.updates_per_step > 0, f"updates_per_step must be > 0, got {c.updates_per_step}")
    _check(c.n_step >= 1, f"n_step must be >= 1, got {c.n_step}")
    _check(c.priority_alpha >= 0, f"priority_alpha must be >= 0, got {c.priority_alpha}")
    for name in ("priority_beta", "priority_beta_end"):
        value = getattr(c, name)
        _check(0 <= value <= 1, f"{name} must be in [0, 1], got {value}")
    _check(c.priority_epsilon > 0, f"priority_epsilon must be > 0, got {c.priority_epsilon}")
    _check(c.exploration_noise in ("ou", "gaussian", "none"),
           f"exploration_noise must be ou, gaussian or none, got {c.exploration_noise!r}")
    _check(c.ou_theta >= 0, f"ou_theta must be >= 0, got {c.ou_theta}")
    _check(c.ou_dt > 0, f"ou_dt must be > 0, got {c.ou_dt}")
    for name in ("ou_sigma", "gaussian_sigma"):
        value = getattr(c, name)
        _check(value >= 0, f"{name} must be >= 0, got {value}")
    _check(c.vector_mode in ("sync", "async"), f"vector_mode must be sync or async, got "
           f"{c.vector_mode!r}")
    _check(c.noise_decay in ("none", "linear", "exponential"),
           f"noise_decay must be none, linear or exponential, got {c.noise_decay!r}")
    _check(0 <= c.noise_decay_start <= c.noise_decay_end,
           f"need 0 <= noise_decay_start <= noise_decay_end, got {c.noise_decay_start} and "
           f"{c.noise_decay_end}")
    _check(0 < c.noise_final_scale <= 1,
           f"noise_final_scale must be in (0, 1], got {c.noise_final_scale}")
    _check(c.actors >= 0, f"actors must be >= 0 (0: no Ray), got {c.actors}")
    for name in ("actor_batch_steps", "max_in_flight", "weights_every"):
        value = getattr(c, name)
        _check(value >= 1, f"{name} must be >= 1, got {value}")
    _check(c.actor_cpus > 0, f"actor_cpus must be > 0, got {c.actor_cpus}: try 1 or 0.25")
    _check(c.actor_noise_spread > 0,
           f"actor_noise_spread must be > 0, got {c.actor_noise_spread}: try 1 (no spread)")
    _check(c.ray_address == "" or c.actors > 0,
           f"ray_address ({c.ray_address!r}) is used only with actors > 0: add --actors N")


def _is_json(value: Any) -> bool:
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def _check_types(c: DDPGConfig) -> None:
    hints = typing.get_type_hints(type(c))
    for f in dataclasses.fields(c):
        value, expected = getattr(c, f.name), hints[f.name]
        if expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                _check(math.isfinite(value), f"{f.name} must be a finite number, got {value}")
                object.__setattr__(c, f.name, float(value))
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif typing.get_origin(expected) is dict:
            ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
        elif typing.get_origin(expected) is tuple:
            ok = isinstance(value, (tuple, list)) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value)
            if ok:
                object.__setattr__(c, f.name, tuple(value))
        else:
            ok = isinstance(value, expected)
        _check(ok, f"{f.name} must be of type {_type_name(expected)}, got {value!r}")


def _type_name(t: Any) -> str:
    if typing.get_origin(t) is tuple:
        return "a list of integers"
    if typing.get_origin(t) is dict:
        return "an object of name: value"
    return t.__name__ if isinstance(t, type) and not isinstance(t, types.GenericAlias) else str(t)


def field_docs(cls: type[DDPGConfig] = TD3Config) -> dict[str, str]:
    """Each config field's documentation, by field name (by default of every algorithm)."""
    return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}


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
    # Fujimoto et al. 2018, "Our DDPG" (warm-up: 10,000 steps on HalfCheetah and Ant, else 1,000).
    "our-ddpg": DDPGConfig(preset="our-ddpg", **_FUJIMOTO),
    # Fujimoto et al. 2018, TD3: "our-ddpg" plus twin critics, target smoothing, delayed updates.
    "td3": TD3Config(preset="td3", target_noise=0.2, target_noise_clip=0.5, policy_delay=2,
                     **_FUJIMOTO),
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
    preset = PRESETS[name]
    unknown = set(overrides) - {f.name for f in dataclasses.fields(preset)}
    td3_only = unknown & {f.name for f in dataclasses.fields(TD3Config)}
    if td3_only:
        raise ConfigError(f"preset {name} ({preset.algorithm}) has no setting "
                          f"{', '.join(sorted(td3_only))}: that is a TD3 setting, use a td3 "
                          "preset (--preset td3)")
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


def config_to_dict(config: DDPGConfig) -> dict[str, Any]:
    """The config as a JSON-ready dict (tuples become lists), with its ``algorithm``."""
    fields = {k: list(v) if isinstance(v, tuple) else v
              for k, v in dataclasses.asdict(config).items()}
    return {"algorithm": config.algorithm, **fields}


def config_from_dict(data: dict[str, Any]) -> DDPGConfig:
    """The inverse of :func:`config_to_dict`; unknown keys and bad values raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError("a config must be a JSON object of field: value")
    data = dict(data)
    algorithm = data.pop("algorithm", "ddpg")
    if algorithm not in CONFIG_CLASSES:
        raise ConfigError(f"unknown algorithm {algorithm!r}: one of {', '.join(CONFIG_CLASSES)}")
    cls = CONFIG_CLASSES[algorithm]
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"unknown config field(s) for {algorithm}: {', '.join(sorted(unknown))}")
    return cls(**data)

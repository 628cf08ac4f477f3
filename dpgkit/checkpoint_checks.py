"""The checks a checkpoint's ``checkpoint.json`` passes before anything in it is used.

- **Integrity.** ``checkpoint.json`` carries ``integrity``: ``sha256:`` and the SHA-256 of its
  own content in canonical form (keys sorted, no spaces, the ``integrity`` key left out), beside
  the size and SHA-256 of each tensor file it lists. A changed or damaged file fails the check.
  Checkpoints written before the field existed load without it.
- **Types and ranges.** Every value that restore reads (counters, optimiser settings, random
  generator states, running episodes, statistics) is checked for its type and range first, so
  a bad value is refused with one line that names it, before anything is restored.
- **Belonging.** A checkpoint resumed inside a run directory must be one of that run's: its
  directory name says its env step counter, and its config is the run's ``config.json`` but for
  the step budget and torch's thread count (the settings a resume may change).
"""

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from dpgkit.config_dict import config_from_dict, config_to_dict
from dpgkit.errors import CheckpointError, DpgkitError

INTEGRITY = "integrity"
NO_UNFINISHED_STEP = {"burst_left": 0, "episode_ends": []}
"""``unfinished_step`` of a checkpoint whose last step was complete (and of older checkpoints,
which lack the key)."""
RESUMABLE = ("total_env_steps", "torch_threads")
"""The config fields a resume may change (``--steps``, ``--torch_threads``: the budget and the
machine's share of cores); any other difference from the run's ``config.json`` means the
checkpoint is not this run's."""


def content_digest(meta: dict[str, Any]) -> str:
    """``sha256:<hex>`` of ``meta`` without its ``integrity`` key, as canonical JSON."""
    body = {key: value for key, value in meta.items() if key != INTEGRITY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def seal(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` as JSON will read it back, with its ``integrity`` field."""
    meta = json.loads(json.dumps(meta))
    meta[INTEGRITY] = content_digest(meta)
    return meta


def check_integrity(meta: dict[str, Any], path: Path) -> None:
    """Refuse a ``checkpoint.json`` whose content does not match its ``integrity`` field (one
    without the field, from an older dpgkit, passes)."""
    if INTEGRITY in meta and meta[INTEGRITY] != content_digest(meta):
        raise CheckpointError(f"{path} fails its integrity check (its SHA-256 differs from "
                              "the one recorded when it was written): it was edited or damaged")


def _number(value: Any, what: str, low: float | None = None, high: float | None = None,
            integer: bool = False, finite: bool = True) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise CheckpointError(f"{what} is {value!r}, not {'an integer' if integer else 'a number'}")
    if finite and not math.isfinite(value):
        raise CheckpointError(f"{what} is {value!r}, not a finite number")
    if low is not None and value < low:
        raise CheckpointError(f"{what} is {value!r}, less than {low}")
    if high is not None and value > high:
        raise CheckpointError(f"{what} is {value!r}, more than {high}")


def _kind(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CheckpointError(f"{what} is {value!r}, not a {name}")
    return value


_ADAM_FLAGS = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")


def _check_param_group(group: Any, what: str) -> None:
    _kind(group, dict, what)
    _number(group.get("lr"), f"{what} lr", low=0.0)
    betas = _kind(group.get("betas", [0.9, 0.999]), list, f"{what} betas")
    if len(betas) != 2:
        raise CheckpointError(f"{what} betas is {betas!r}, not two numbers")
    for beta in betas:
        _number(beta, f"{what} betas", low=0.0, high=1.0)
    _number(group.get("eps", 1e-8), f"{what} eps", low=0.0)
    _number(group.get("weight_decay", 0.0), f"{what} weight_decay", low=0.0)
    for flag in _ADAM_FLAGS:
        _kind(group.get(flag, False), bool, f"{what} {flag}")
    for flag in ("foreach", "fused"):
        _kind(group.get(flag), (bool, type(None)), f"{what} {flag}")
    for index in _kind(group.get("params"), list, f"{what} params"):
        _number(index, f"{what} params", low=0, integer=True)


def _check_generator(state: Any, what: str) -> None:
    _kind(state, dict, what)
    _kind(state.get("bit_generator"), str, f"{what} bit_generator")
    _kind(state.get("state"), dict, f"{what} state")


def check_values(meta: dict[str, Any]) -> None:
    """Refuse a value of ``checkpoint.json`` of the wrong type or out of range (CheckpointError
    naming it); the sections themselves were checked by the reader."""
    try:
        config_from_dict(meta["config"])
    except DpgkitError as error:
        raise CheckpointError(f"its config is not valid ({error})") from None
    env = meta["env"]
    _kind(env.get("env_id"), str, "env env_id")
    for key in ("obs_dim", "action_dim"):
        _number(env.get(key), f"env {key}", low=1, integer=True)
    for key in ("action_low", "action_high"):
        bounds = _kind(env.get(key), list, f"env {key}")
        if len(bounds) != env["action_dim"]:
            raise CheckpointError(f"env {key} has {len(bounds)} values for "
                                  f"{env['action_dim']} action dimensions")
        for bound in bounds:
            _number(bound, f"env {key}")
    counters = meta["counters"]
    for key in ("env_steps", "updates", "episodes"):
        _number(counters.get(key), f"counters {key}", low=0, integer=True)
    _number(counters.get("update_credit"), "counters update_credit", low=0.0)
    _kind(counters.get("replay"), dict, "counters replay")
    for name, groups in meta["param_groups"].items():
        for k, group in enumerate(_kind(groups, list, f"param_groups {name}")):
            _check_param_group(group, f"param_groups {name}[{k}]")
    rng = _kind(meta.get("rng"), dict, "rng")
    python = _kind(rng.get("python"), list, "rng python")
    if len(python) != 3 or not isinstance(python[1], list) or len(python[1]) != 625:
        raise CheckpointError("rng python is not a Python random generator's state")
    for value in python[1]:
        _number(value, "rng python", low=0, high=2**32 - 1, integer=True)
    for key in ("warmup", "noise", "replay"):
        _check_generator(rng.get(key), f"rng {key}")
    unfinished = _kind(meta.get("unfinished_step", NO_UNFINISHED_STEP), dict, "unfinished_step")
    _number(unfinished.get("burst_left"), "unfinished_step burst_left", low=0, integer=True)
    for name, episodes in (("episodes", meta.get("episodes")),
                           ("unfinished_step episode_ends", unfinished.get("episode_ends"))):
        for k, episode in enumerate(_kind(episodes, list, name)):
            _kind(episode, dict, f"{name}[{k}]")
            _number(episode.get("total_reward"), f"{name}[{k}] total_reward")
            _number(episode.get("length"), f"{name}[{k}] length", low=0, integer=True)
    for k, record in enumerate(_kind(meta.get("episode_records"), list, "episode_records")):
        _kind(record, dict, f"episode_records[{k}]")
        _kind(record.get("actions"), list, f"episode_records[{k}] actions")
    stats = _kind(meta.get("update_stats"), dict, "update_stats")
    for key, value in _kind(stats.get("sums"), dict, "update_stats sums").items():
        _number(value, f"update_stats sums {key}")
    _number(stats.get("count"), "update_stats count", low=0, integer=True)
    for value in _kind(meta.get("last_eval"), list, "last_eval"):
        _number(value, "last_eval", finite=False)
    _number(meta.get("metrics_bytes"), "metrics_bytes", low=0, integer=True)
    _number(meta.get("wall_seconds"), "wall_seconds", low=0.0)
    _kind(meta.get("eval_pending", False), bool, "eval_pending")
    reached = _kind(meta.get("target_reached"), (dict, type(None)), "target_reached")
    if reached is not None:
        _number(reached.get("env_steps"), "target_reached env_steps", low=0, integer=True)
        _number(reached.get("seconds"), "target_reached seconds", low=0.0)
    td7 = _kind(meta.get("td7"), (dict, type(None)), "td7")
    for key, value in (td7 or {}).items():
        _number(value, f"td7 {key}")


def check_name(directory: Path, meta: dict[str, Any]) -> None:
    """Refuse a checkpoint whose directory name is not its env step counter's."""
    steps = meta["counters"]["env_steps"]
    if directory.name != f"step-{steps:012d}":
        raise CheckpointError(f"{directory} holds the checkpoint of env step {steps}, which "
                              f"would be named step-{steps:012d}: it was renamed or copied here "
                              "from elsewhere; move it out of this run to resume")


def check_belongs(directory: Path, meta: dict[str, Any], run_config: Path) -> None:
    """Refuse a checkpoint whose config differs from the run's ``config.json`` (``run_config``)
    beyond :data:`RESUMABLE`: it is another run's. A run without ``config.json`` passes."""
    if not run_config.is_file():
        return
    try:
        run = config_to_dict(config_from_dict(json.loads(run_config.read_text())))
    except (OSError, ValueError, DpgkitError) as error:
        raise CheckpointError(f"cannot compare {directory} with the run's {run_config} "
                              f"({error}): restore {run_config.name} or move it away") from None
    saved = config_to_dict(config_from_dict(meta["config"]))
    differ = sorted(key for key in {*run, *saved} - set(RESUMABLE)
                    if run.get(key) != saved.get(key))
    if differ:
        shown = ", ".join(f"{key} {saved.get(key)!r} (the run: {run.get(key)!r})"
                          for key in differ[:3])
        raise CheckpointError(f"{directory} is not a checkpoint of this run: its config "
                              f"differs from {run_config} in {shown}; move it out of this run "
                              "to resume")

"""A config by name and as JSON: ``config.json``'s form of a :class:`~dpgkit.config.DDPGConfig`
(of any algorithm's class) and back, the fields' old names, and each field's documentation.
"""

import dataclasses
from typing import Any

from dpgkit.config import CONFIG_CLASSES, DDPGConfig
from dpgkit.errors import ConfigError

RENAMED = {"eval_every": "eval_every_steps", "checkpoint_every": "checkpoint_every_steps",
           "weights_every": "publish_every_updates"}
"""Fields renamed so that a counter says its unit; the old names are still read everywhere a
setting is given by name (config files, checkpoints, flags, keyword arguments)."""


def current_names(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with each renamed field under its current name."""
    return {RENAMED.get(name, name): value for name, value in settings.items()}


def field_docs(cls: type[DDPGConfig] | None = None) -> dict[str, str]:
    """Each config field's documentation, by field name: of ``cls``, or of every algorithm's
    (DDPG's fields first, then each algorithm's own, in the order they were defined)."""
    classes = list(CONFIG_CLASSES.values()) if cls is None else [cls]
    return {f.name: f.metadata["doc"] for c in classes for f in dataclasses.fields(c)}


def config_to_dict(config: DDPGConfig) -> dict[str, Any]:
    """The config as a JSON-ready dict (tuples become lists), with its ``algorithm``."""
    fields = {k: list(v) if isinstance(v, tuple) else v
              for k, v in dataclasses.asdict(config).items()}
    return {"algorithm": config.algorithm, **fields}


def config_from_dict(data: dict[str, Any]) -> DDPGConfig:
    """The inverse of :func:`config_to_dict`; unknown keys and bad values raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError("a config must be a JSON object of field: value")
    data = current_names(data)
    algorithm = data.pop("algorithm", "ddpg")
    if algorithm not in CONFIG_CLASSES:
        raise ConfigError(f"unknown algorithm {algorithm!r}: one of {', '.join(CONFIG_CLASSES)}")
    cls = CONFIG_CLASSES[algorithm]
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"unknown config field(s) for {algorithm}: {', '.join(sorted(unknown))}")
    return cls(**data)

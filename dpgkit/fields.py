"""A config field: its default, its documentation, and its own check, side by side.

    gamma: float = setting(0.98, "Discount factor, in [0, 1].", check="in [0, 1]", hint="try 0.99")

``check`` is a range in the notation of its error message: ``">= 1"``, ``"> 0"``, ``"in [0, 1]"``,
``"in (0, 1]"``, ``"in [0, 2**62)"``; ``"layer sizes"`` (one or more integers >= 1); or
``"JSON values"`` (a dict that JSON keeps as it is). A dict default is copied for each config.
``choices`` lists the values a string field may take (the CLI offers them as argparse choices).
:func:`check_fields` checks every field's type, then its range or choices; rules that tie two
fields together stay with the config class (:func:`dpgkit.config.check_rules`).
"""

import dataclasses
import json
import math
import types
import typing
from typing import Any

from dpgkit.errors import ConfigError


def setting(default: Any, doc: str, check: str | None = None,
            choices: tuple[str, ...] | None = None, hint: str = "") -> Any:
    """A dataclass field with its documentation and its own check (see the module)."""
    metadata = {"doc": doc, "check": check, "choices": choices, "hint": hint}
    if isinstance(default, dict):  # mutable: each config gets its own copy
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def choices_text(choices: tuple[str, ...]) -> str:
    """('ou', 'gaussian', 'none') -> 'ou, gaussian or none'."""
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


def _number(text: str) -> float:
    base, _, power = text.strip().partition("**")
    return int(base) ** int(power) if power else float(base)


def in_range(value: float, check: str) -> bool:
    """Whether ``value`` satisfies ``check`` (">= 1", "> 0", "in [0, 1]", "in (0, 1]", ...)."""
    if check.startswith(">="):
        return value >= _number(check[2:])
    if check.startswith(">"):
        return value > _number(check[1:])
    low, high = (_number(x) for x in check[4:-1].split(","))
    return ((value >= low) if check[3] == "[" else (value > low)) and (
        (value <= high) if check[-1] == "]" else (value < high))


def field_error(field: dataclasses.Field, value: Any) -> str | None:
    """The message for a value that breaks ``field``'s own check or choices; None if it
    keeps them."""
    check, choices, hint = (field.metadata.get(key) for key in ("check", "choices", "hint"))
    if choices is not None and value not in choices:
        return f"{field.name} must be {choices_text(choices)}, got {value!r}"
    if check == "layer sizes":
        if len(value) >= 1 and all(n >= 1 for n in value):
            return None
        return (f"{field.name} must list one or more positive layer sizes (e.g. 256,256), "
                f"got {value}")
    if check == "JSON values":
        if _is_json(value):
            return None
        return (f"{field.name} must hold JSON values (numbers, strings, true/false, null, "
                f"lists, objects), got {value!r}")
    if check is None or in_range(value, check):
        return None
    return f"{field.name} must be {check}, got {value}" + (f": {hint}" if hint else "")


def _is_json(value: Any) -> bool:
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def check_fields(config: Any) -> None:
    """Each field's type (ints become floats where a float is expected, lists tuples), then its
    own range or choices; the first broken one raises ConfigError."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        _check_type(config, f, hints[f.name])
    for f in dataclasses.fields(config):
        message = field_error(f, getattr(config, f.name))
        if message is not None:
            raise ConfigError(message)


def _check_type(config: Any, f: dataclasses.Field, expected: Any) -> None:
    value = getattr(config, f.name)
    if expected == float | None:  # an optional number: None (not given) or a float
        if value is None:
            return
        expected = float
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            if not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value}")
            object.__setattr__(config, f.name, float(value))
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typing.get_origin(expected) is dict:
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
    elif typing.get_origin(expected) is tuple:
        ok = isinstance(value, (tuple, list)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
        if ok:
            object.__setattr__(config, f.name, tuple(value))
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(f"{f.name} must be of type {_type_name(expected)}, got {value!r}")


def _type_name(t: Any) -> str:
    if t == float | None:
        return "float"
    if typing.get_origin(t) is tuple:
        return "a list of integers"
    if typing.get_origin(t) is dict:
        return "an object of name: value"
    return t.__name__ if isinstance(t, type) and not isinstance(t, types.GenericAlias) else str(t)

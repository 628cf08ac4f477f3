"""The search space of ``dpgkit tune``: which settings a trial draws, per algorithm, and from what.

A space is a list of :class:`Dimension`, each one config field (its name is the Optuna
parameter's name too) drawn from a range or a list. :func:`suggest` asks an Optuna trial for
every dimension of the algorithm's space whose field the user did not fix (``--fixed``,
``--config``), and returns the drawn fields as config overrides. A dimension that only matters
for one kind of exploration noise is drawn only when that kind is (a conditional space, which
Optuna's TPE handles). docs/cli.md lists the spaces.

This module needs no Optuna: it only calls ``trial.suggest_float`` / ``suggest_int`` /
``suggest_categorical``.
"""

from dataclasses import dataclass
from typing import Any

from dpgkit.fields import choices_text


@dataclass(frozen=True)
class Dimension:
    """One searched field: ``low``..``high`` (``log``: uniform in log space), or one of
    ``choices``; ``when`` = (field, value): drawn only where that field was drawn (or fixed) to
    that value."""

    name: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()
    when: tuple[str, Any] | None = None


def _layers(*options: str) -> tuple[str, ...]:
    return options  # layer sizes as text ("256,256"): Optuna stores categorical primitives


_DPG = [  # DDPG's and TD3's common dimensions
    Dimension("actor_lr", 1e-4, 3e-3, log=True),
    Dimension("critic_lr", 1e-4, 3e-3, log=True),
    Dimension("tau", 1e-3, 5e-2, log=True),
    Dimension("gamma", choices=(0.95, 0.98, 0.99, 0.995)),
    Dimension("batch_size", choices=(64, 128, 256, 512)),
    Dimension("n_step", choices=(1, 3, 5)),
    Dimension("actor_hidden", choices=_layers("64,64", "256,256", "400,300")),
    Dimension("critic_hidden", choices=_layers("64,64", "256,256", "400,300")),
    Dimension("exploration_noise", choices=("gaussian", "ou", "param")),
    Dimension("gaussian_sigma", 0.05, 0.5, log=True, when=("exploration_noise", "gaussian")),
    Dimension("gaussian_sigma", 0.05, 0.5, log=True, when=("exploration_noise", "param")),
    Dimension("ou_sigma", 0.05, 0.5, log=True, when=("exploration_noise", "ou")),
]

_TD3 = [  # TD3's own: smoothing noise and delay
    Dimension("target_noise", 0.05, 0.5),
    Dimension("target_noise_clip", choices=(0.3, 0.5, 1.0)),
    Dimension("policy_delay", 1, 3, integer=True),
]

_TD7 = [  # one width per network, SALE's sizes, LAP's alpha, TD7's target copies
    Dimension("actor_lr", 1e-4, 1e-3, log=True),
    Dimension("critic_lr", 1e-4, 1e-3, log=True),
    Dimension("encoder_lr", 1e-4, 1e-3, log=True),
    Dimension("gamma", choices=(0.98, 0.99, 0.995)),
    Dimension("batch_size", choices=(128, 256, 512)),
    Dimension("actor_hidden", choices=_layers("128", "256", "512")),
    Dimension("critic_hidden", choices=_layers("128", "256", "512")),
    Dimension("zs_dim", choices=(64, 128, 256)),
    Dimension("gaussian_sigma", 0.05, 0.3, log=True),
    Dimension("lap_alpha", 0.0, 1.0),
    Dimension("target_update_every_updates", choices=(100, 250, 500)),
    *_TD3,
]

SPACES: dict[str, list[Dimension]] = {"ddpg": _DPG, "td3": _DPG + _TD3, "td7": _TD7}
"""The searched dimensions of each algorithm (the algorithm of the ``--preset`` tuned)."""


def suggest(trial: Any, algorithm: str, fixed: dict[str, Any]) -> dict[str, Any]:
    """The fields ``trial`` draws for ``algorithm``, as config overrides (layer sizes as
    tuples); fields in ``fixed`` are not drawn, and conditions read their fixed value."""
    drawn: dict[str, Any] = {}
    for dim in SPACES[algorithm]:
        if dim.name in fixed or dim.name in drawn:
            continue
        if dim.when is not None:
            field, value = dim.when
            if {**fixed, **drawn}.get(field) != value:
                continue
        if dim.choices:
            drawn[dim.name] = trial.suggest_categorical(dim.name, list(dim.choices))
        elif dim.integer:
            drawn[dim.name] = trial.suggest_int(dim.name, int(dim.low), int(dim.high))
        else:
            drawn[dim.name] = trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log)
    return {name: tuple(int(n) for n in value.split(",")) if name.endswith("_hidden") else value
            for name, value in drawn.items()}


def describe(algorithm: str) -> list[str]:
    """One line per dimension of ``algorithm``'s space (for docs and ``--help``)."""
    lines = []
    for dim in SPACES[algorithm]:
        what = (f"one of {choices_text(tuple(map(str, dim.choices)))}" if dim.choices else
                f"{'integer' if dim.integer else 'log-uniform' if dim.log else 'uniform'} in "
                f"[{dim.low:g}, {dim.high:g}]")
        condition = f" (with {dim.when[0]} {dim.when[1]})" if dim.when else ""
        lines.append(f"{dim.name}: {what}{condition}")
    return lines

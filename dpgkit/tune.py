"""``dpgkit tune``: a hyperparameter search on Optuna, stored in a database.

A study maximises the final evaluation return, averaged over ``seeds_per_trial`` seeds. Each
trial draws its settings from the algorithm's space (:mod:`dpgkit.tune_space`) with Optuna's TPE
sampler, then trains one :class:`~dpgkit.loop.Trainer` per seed into ``OUT/trial-<N>/seed<S>``
(full run directories), stepping the seeds in turn from one evaluation to the next. At every
evaluation the seeds' mean is reported to the pruner (median, threshold, or none); a pruned
trial stops its runs there.

The study lives in a database: SQLite ``OUT/study.db`` by default, or any Optuna RDB storage URL
(``--storage postgresql://...``), so

- a study resumes after a kill: finished trials are kept, and a trial that was running when its
  process died stops sending heartbeats, is marked FAIL once ``2 * heartbeat_seconds`` have
  passed, and is retried (same settings, a new trial number) by the next process;
- several ``dpgkit tune`` processes with the same ``--study_name`` and storage work on one study
  at once, each running its own ``--trials``.

At the end (:mod:`dpgkit.tune_report`): ``best_config.json`` (for ``dpgkit train --config``),
``trials.json`` and ``history.png``.
"""

import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpgkit import tune_report
from dpgkit.config import DDPGConfig
from dpgkit.config_dict import config_from_dict, config_to_dict
from dpgkit.errors import Diverged, DpgkitError
from dpgkit.loop import Trainer
from dpgkit.tune_space import suggest

INSTALL_HINT = "dpgkit tune needs Optuna: pip install 'dpgkit[tune]'"


@dataclass(frozen=True)
class TuneSettings:
    """How to search (the flags of ``dpgkit tune``; docs/cli.md)."""

    out: Path
    trials: int = 20
    seeds_per_trial: int = 2
    study_name: str = "dpgkit"
    storage: str | None = None  # None: sqlite:///OUT/study.db
    sampler_seed: int = 0
    startup_trials: int = 5
    pruner: str = "median"  # median, threshold or none
    prune_below: float = -math.inf
    prune_warmup_evals: int | None = None  # None: a third of the evaluations
    heartbeat_seconds: int = 60
    max_study_trials: int | None = None


def import_optuna() -> Any:
    """Optuna, or a DpgkitError that names the extra to install."""
    try:
        import optuna
    except ImportError:
        raise DpgkitError(INSTALL_HINT) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(settings: TuneSettings) -> str:
    """The study's database: ``--storage``, or SQLite in the output directory."""
    return settings.storage or f"sqlite:///{(settings.out / 'study.db').resolve()}"


def open_study(settings: TuneSettings, config: DDPGConfig) -> Any:
    """The study named ``study_name`` in the storage, created if missing. Stale trials (their
    process died) are failed by heartbeat and retried once each."""
    optuna = import_optuna()
    url = storage_url(settings)
    storage = _storage(optuna, url, settings.heartbeat_seconds)
    # A new process draws from its own stream: TPE seeded with the seed plus the trials so far.
    known = _trial_count(optuna, storage, settings.study_name)
    sampler = optuna.samplers.TPESampler(seed=settings.sampler_seed + known,
                                         n_startup_trials=settings.startup_trials)
    study = optuna.create_study(storage=storage, study_name=settings.study_name,
                                direction="maximize", sampler=sampler,
                                pruner=make_pruner(optuna, settings, config),
                                load_if_exists=True)
    study.set_user_attr("base_config", config_to_dict(config))
    return study


def _storage(optuna: Any, url: str, heartbeat_seconds: int) -> Any:
    """The RDB storage at ``url`` with heartbeats. Two processes starting on a new database
    both create its tables, and one of them loses the race (an IntegrityError on the schema
    version): it tries again, and finds the tables made."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=heartbeat_seconds,
                    heartbeat_stale_trial_callback=
                    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
        except (IntegrityError, OperationalError) as error:
            if attempt == 4:
                raise DpgkitError(f"cannot open the study storage {url!r}: {error}") from None
            time.sleep(0.5 * (attempt + 1))
        except (ImportError, ValueError, optuna.exceptions.StorageInternalError) as error:
            raise DpgkitError(f"cannot open the study storage {url!r}: {error}") from None
    raise AssertionError("unreachable")


def _trial_count(optuna: Any, storage: Any, name: str) -> int:
    try:
        return len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
    except KeyError:  # no such study yet
        return 0


def make_pruner(optuna: Any, settings: TuneSettings, config: DDPGConfig) -> Any:
    """The pruner ``settings.pruner`` names. Steps are env steps; the median pruner waits for
    ``startup_trials`` finished trials and ``prune_warmup_evals`` evaluations of a trial."""
    if settings.pruner == "none":
        return optuna.pruners.NopPruner()
    if settings.pruner == "threshold":
        return optuna.pruners.ThresholdPruner(lower=settings.prune_below)
    evaluations = max(config.total_env_steps // config.eval_every_steps, 1)
    warmup = (evaluations // 3 if settings.prune_warmup_evals is None
              else settings.prune_warmup_evals)
    return optuna.pruners.MedianPruner(n_startup_trials=settings.startup_trials,
                                       n_warmup_steps=warmup * config.eval_every_steps)


def trial_dir(out: Path, number: int) -> Path:
    return out / f"trial-{number:04d}"


def trial_config(trial: Any, base: DDPGConfig, fixed: dict[str, Any]) -> DDPGConfig:
    """The base config with the trial's drawn settings (checked like any config)."""
    return config_from_dict({**config_to_dict(base), **suggest(trial, base.algorithm, fixed)})


def run_trial(trial: Any, config: DDPGConfig, out: Path, seeds: int,
              report: Callable[[str], None]) -> float:
    """Train ``config`` with seeds seed .. seed + seeds - 1 side by side into the trial's
    directory; report each evaluation's mean over the seeds to the pruner; return the final
    evaluations' mean. A pruned trial raises optuna.TrialPruned with its runs closed."""
    optuna = import_optuna()
    directory = trial_dir(out, trial.number)
    trial.set_user_attr("run_dir", str(directory))
    trial.set_user_attr("config", config_to_dict(config))
    trainers: list[Trainer] = []
    finished = False
    try:
        for k in range(seeds):
            seed_config = dataclasses.replace(config, seed=config.seed + k)
            trainers.append(Trainer(seed_config, directory / f"seed{seed_config.seed}"))
        while not trainers[0].budget_reached:
            value = float(np.mean([_run_to_evaluation(t) for t in trainers]))
            steps = trainers[0].env_steps
            trial.report(value, steps)
            if not trainers[0].budget_reached and trial.should_prune():
                report(f"trial {trial.number}: pruned at env step {steps} (eval {value:.2f})")
                raise optuna.TrialPruned(f"eval return {value:.2f} at env step {steps}")
        finals = [t.finish()["eval_return_mean"] for t in trainers]
        finished = True
    except Diverged as error:  # a result for this trial, not a reason to stop the study
        trial.set_user_attr("diverged", str(error))
        report(f"trial {trial.number}: diverged ({error})")
        return float("nan")  # Optuna records the trial as FAIL
    finally:
        if not finished:
            for trainer in trainers:
                trainer.close()
    value = float(np.mean(finals))
    trial.set_user_attr("per_seed", finals)
    report(f"trial {trial.number}: eval return {value:.2f} (seeds: "
           f"{', '.join(f'{v:.1f}' for v in finals)}) -> {directory}")
    return value


def _run_to_evaluation(trainer: Trainer) -> float:
    """Step ``trainer`` up to and through its next evaluation; return that evaluation's mean."""
    while True:
        events = trainer.step()
        if "eval_return_mean" in events:
            return events["eval_return_mean"]


def tune(base: DDPGConfig, fixed: dict[str, Any], settings: TuneSettings,
         report: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``settings.trials`` trials of the study (fewer if ``max_study_trials`` finished
    trials are reached first), then write the study's outputs; return the best trial's
    summary (:func:`dpgkit.tune_report.write_outputs`)."""
    optuna = import_optuna()
    settings.out.mkdir(parents=True, exist_ok=True)
    study = open_study(settings, base)

    def objective(trial: Any) -> float:
        return run_trial(trial, trial_config(trial, base, fixed), settings.out,
                         settings.seeds_per_trial, report)

    callbacks = []
    trials = settings.trials
    if settings.max_study_trials is not None:
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        trials = min(trials, max(settings.max_study_trials - len(
            study.get_trials(deepcopy=False, states=done)), 0))
        callbacks.append(optuna.study.MaxTrialsCallback(settings.max_study_trials, states=done))
    if trials > 0:
        study.optimize(objective, n_trials=trials, callbacks=callbacks, catch=())
    return tune_report.write_outputs(study, settings.out)

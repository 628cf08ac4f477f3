"""The flags of ``dpgkit tune`` (:mod:`dpgkit.tune` runs the search; docs/cli.md lists the
search spaces)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dpgkit.presets import PRESETS


def add_tune_parser(commands: Any, parse_kwargs: Callable[[str], dict[str, Any]]) -> None:
    """Add ``tune`` to the ``dpgkit`` subcommands; ``parse_kwargs`` reads ``--fixed``."""
    tune = commands.add_parser(
        "tune", help="search settings with Optuna (pip install 'dpgkit[tune]')",
        description="Search a preset's settings on one env with Optuna's TPE sampler and a "
                    "pruner fed by the periodic evaluations; the study is kept in a database "
                    "(resumable, shareable by several processes). Writes OUT/best_config.json "
                    "(for dpgkit train --config), OUT/trials.json and OUT/history.png.")
    tune.add_argument("--preset", default="ddpg", choices=list(PRESETS),
                      help="settings to start from; its algorithm picks the search space "
                           "(default: ddpg)")
    tune.add_argument("--env", "--env_id", dest="env_id", default=None, metavar="NAME",
                      help="Gymnasium environment id (default: the preset's, Pendulum-v1)")
    tune.add_argument("--steps", "--total_env_steps", dest="total_env_steps", type=int,
                      default=None, metavar="N", help="env steps per run (default: the preset's)")
    tune.add_argument("--eval_every_steps", type=int, default=None, metavar="N",
                      help="evaluate (and report to the pruner) every N env steps")
    tune.add_argument("--eval_episodes", type=int, default=None, metavar="N",
                      help="episodes per evaluation")
    tune.add_argument("--seed", type=int, default=None, metavar="N",
                      help="the first seed of each trial (default: the preset's, 0)")
    tune.add_argument("--config", type=Path, default=None, metavar="FILE",
                      help="a JSON file of config fields, applied over the preset and never "
                           "searched")
    tune.add_argument("--fixed", type=parse_kwargs, nargs="+", default=None, metavar="KWARGS",
                      help="config fields to hold fixed (not searched), as key=value pairs: "
                           "actor_hidden=[64,64] batch_size=128")
    tune.add_argument("--out", type=Path, default=Path("tune"),
                      help="output directory: the study database, trial-<N>/seed<S> runs, the "
                           "results (default: tune)")
    tune.add_argument("--trials", type=int, default=20, metavar="N",
                      help="trials this process runs (default: 20)")
    tune.add_argument("--max_study_trials", type=int, default=None, metavar="N",
                      help="stop once the study holds N complete or pruned trials, from every "
                           "process and earlier session (rerun the same command to finish a "
                           "killed study)")
    tune.add_argument("--seeds_per_trial", type=int, default=2, metavar="N",
                      help="seeds per trial; a trial's value is their mean final eval return "
                           "(default: 2)")
    tune.add_argument("--study_name", default="dpgkit", metavar="NAME",
                      help="the study in the storage; processes sharing it share the search "
                           "(default: dpgkit)")
    tune.add_argument("--storage", default=None, metavar="URL",
                      help="an Optuna storage URL, e.g. postgresql://user@host/db (default: "
                           "sqlite:///OUT/study.db)")
    tune.add_argument("--sampler_seed", type=int, default=0, metavar="N",
                      help="seed of the TPE sampler (a process joining a study with K trials "
                           "uses N + K) (default: 0)")
    tune.add_argument("--startup_trials", type=int, default=5, metavar="N",
                      help="random trials before TPE models the results; also the trials the "
                           "median pruner waits for (default: 5)")
    tune.add_argument("--pruner", default="median", choices=["median", "threshold", "none"],
                      help="median: stop a trial whose evaluation is below the median of earlier "
                           "trials' at that step; threshold: below --prune_below (default: "
                           "median)")
    tune.add_argument("--prune_below", type=float, default=None, metavar="X",
                      help="with --pruner threshold: prune a trial whose evaluation mean is "
                           "below X")
    tune.add_argument("--prune_warmup_evals", type=int, default=None, metavar="N",
                      help="evaluations of a trial before the median pruner may stop it "
                           "(default: a third of them)")
    tune.add_argument("--heartbeat_seconds", type=int, default=60, metavar="N",
                      help="a running trial's heartbeat; a trial silent for 2N seconds (its "
                           "process died) is failed and retried (default: 60)")

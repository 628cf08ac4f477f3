"""``dpgkit tune`` from its flags (:mod:`dpgkit.tune_flags`) to a search (:mod:`dpgkit.tune`)
and its closing lines."""

import argparse
from typing import Any

from dpgkit.errors import DpgkitError
from dpgkit.presets import preset_config
from dpgkit.tune import TuneSettings, import_optuna, tune

_RUN_FLAGS = ("env_id", "total_env_steps", "eval_every_steps", "eval_episodes", "seed")


def tune_command(args: argparse.Namespace, from_file: dict[str, Any]) -> int:
    """Check the flags, build the base config (preset, then ``--config``, ``--fixed`` and the
    run flags; none of these fields is searched) and run the study."""
    import_optuna()  # a missing extra fails first, in one line
    for name in ("trials", "seeds_per_trial", "startup_trials", "heartbeat_seconds"):
        if getattr(args, name) < 1:
            raise DpgkitError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.max_study_trials is not None and args.max_study_trials < 1:
        raise DpgkitError(f"--max_study_trials must be >= 1, got {args.max_study_trials}")
    if (args.pruner == "threshold") != (args.prune_below is not None):
        raise DpgkitError("--prune_below goes with --pruner threshold, and it needs one")
    from_file.pop("preset", None)  # --preset says it
    fixed = {**from_file, **{key: value for part in args.fixed or [] for key, value in
                             part.items()}}
    fixed.update({name: getattr(args, name) for name in _RUN_FLAGS
                  if getattr(args, name) is not None})
    base = preset_config(args.preset, **fixed)
    settings = TuneSettings(
        out=args.out, trials=args.trials, seeds_per_trial=args.seeds_per_trial,
        study_name=args.study_name, storage=args.storage, sampler_seed=args.sampler_seed,
        startup_trials=args.startup_trials, pruner=args.pruner,
        prune_below=args.prune_below if args.prune_below is not None else float("-inf"),
        prune_warmup_evals=args.prune_warmup_evals, heartbeat_seconds=args.heartbeat_seconds,
        max_study_trials=args.max_study_trials)
    print(f"dpgkit: tuning {base.preset} ({base.algorithm}) on {base.env_id}: {args.trials} "
          f"trials x {args.seeds_per_trial} seeds x {base.total_env_steps} env steps; study "
          f"{args.study_name!r} -> {args.out}", flush=True)
    summary = tune(base, fixed, settings, report=lambda line: print(line, flush=True))
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(summary["trials"].items()))
    print(f"study {summary['study_name']!r}: {counts}; history: {args.out / 'history.png'}")
    best = summary["best"]
    if best is None:
        print("no trial has completed yet (all pruned, failed or running): no best config")
        return 0
    print(f"best: trial {best['number']}, eval return {best['value']:.2f}, "
          f"{', '.join(f'{k}={v}' for k, v in best['params'].items())}")
    print(f"best config: {best['config_file']}  (next: dpgkit train --config "
          f"{best['config_file']})")
    return 0

"""The ``dpgkit`` command: ``dpgkit train``, ``plot``, ``export``, ``eval`` and ``tune``.

Every :class:`~dpgkit.config.DDPGConfig` field is a ``train`` flag of the same name
(``--tau 0.005``; ``--actor-lr`` is accepted for ``--actor_lr``), with the field's documentation
as its help (:mod:`dpgkit.flags` declares them). Bad input ends with one line
``dpgkit: error: ...`` and exit status 2.
"""

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dpgkit import rundir
from dpgkit.config import DDPGConfig
from dpgkit.config_dict import field_docs
from dpgkit.errors import (
    Diverged,
    DpgkitError,
    DpgkitWarning,
    EnvFailedMidRun,
    Interrupted,
    WriteFailed,
)
from dpgkit.flags import EXIT_BAD_INPUT, build_parser
from dpgkit.presets import PRESETS, preset_config

EXIT_DIVERGED = 3
EXIT_ENV_FAILED = 4  # the environment failed mid-run (a checkpoint of the last step was written)
EXIT_WRITE_FAILED = 5  # a checkpoint or run file could not be written (a full disk)


def _train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dpgkit.envs import make_env
    from dpgkit.train import train

    overrides = {name: getattr(args, name) for name in field_docs()
                 if name != "preset" and getattr(args, name) is not None}
    if isinstance(overrides.get("env_kwargs"), list):  # --env_kwargs g=9.81 m=2.0
        overrides["env_kwargs"] = {k: v for part in overrides["env_kwargs"] for k, v in
                                   part.items()}
    console = Console(soft_wrap=True)
    if args.workers is not None and args.workers < 1:
        raise DpgkitError(f"--workers must be >= 1, got {args.workers}")
    if args.resume is not None:
        return _resume(args, overrides, console)
    from_file = _config_file(args.config)
    preset = from_file.pop("preset", None)  # a run's own config.json names its preset
    preset = args.preset or preset or "ddpg"
    config = preset_config(preset, **{**from_file, **overrides})
    run_dir = args.out or rundir.default_run_dir(config, args.seeds)
    if args.overwrite:  # the env is checked first, so a refused run deletes nothing
        make_env(config.env_id, **config.env_kwargs).close()
        rundir.remove_earlier_run(run_dir)
    elif run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise DpgkitError(rundir.taken_message(run_dir))
    if args.seeds is not None:
        return _train_seeds(args, config, run_dir, console)
    summary = train(config, run_dir, console, progress=not args.no_progress)
    _print_summary(console, summary, run_dir)
    return 0


def _resume(args: argparse.Namespace, overrides: dict[str, Any], console: Any) -> int:
    from dpgkit.train import train

    steps = overrides.pop("total_env_steps", None)
    threads = overrides.pop("torch_threads", None)  # this machine's share, not the method's
    given = sorted(overrides) + [f for f in ("out", "config", "seeds", "preset", "overwrite",
                                             "workers") if getattr(args, f)]
    if given:
        raise DpgkitError(f"--resume continues a run with its saved config; drop "
                          f"{', '.join('--' + g for g in given)} (only --steps and "
                          "--torch_threads may change)")
    from dpgkit.checkpoint import run_of

    before = _done_before(args.resume)
    summary = train(None, args.resume, console, progress=not args.no_progress,
                    resume_steps=steps, resume_threads=threads)
    session = (summary["env_steps"] - before[0], summary["wall_seconds"] - before[1]
               ) if before else None
    _print_summary(console, summary, run_of(args.resume), session)
    return 0


def _done_before(path: Path) -> tuple[int, float] | None:
    """The env steps and training seconds of the checkpoint a resume of ``path`` starts from
    (None if it cannot be read: the resume then says why)."""
    from dpgkit.checkpoint import resume_meta

    try:
        meta = resume_meta(path)
        return int(meta["counters"]["env_steps"]), float(meta["wall_seconds"])
    except (TypeError, KeyError, ValueError):
        return None


def _config_file(path: Path | None) -> dict[str, Any]:
    """The fields of a JSON config file (none without a file)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise DpgkitError(f"cannot read config file {path} ({error.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DpgkitError(f"config file {path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise DpgkitError(f"config file {path} must hold a JSON object of field: value")
    data.pop("algorithm", None)  # the preset says it (a run's config.json holds both)
    if "preset" in data and data["preset"] not in PRESETS:
        raise DpgkitError(f"config file {path} names the preset {data['preset']!r}: one of "
                          f"{', '.join(PRESETS)}")
    return data


def _print_summary(console: Any, summary: dict[str, Any], run_dir: Path,
                   session: tuple[int, float] | None = None) -> None:
    """The final line; after a resume, ``session`` = (env steps, seconds) of this process, with
    the whole run's beside them."""
    if session is None:
        timing = f"{summary['wall_seconds']:.0f} s, {summary['steps_per_second']:.0f} steps/s"
    else:
        steps, seconds = session
        timing = (f"this session: {steps} env steps in {seconds:.0f} s, "
                  f"{steps / max(seconds, 1e-9):.0f} steps/s; the whole run: "
                  f"{summary['env_steps']} env steps in {summary['wall_seconds']:.0f} s of "
                  "training")
    console.print(f"final evaluation: return {summary['eval_return_mean']:.2f} +- "
                  f"{summary['eval_return_std']:.2f} over {summary['eval_episodes']} episodes "
                  f"({timing})")
    console.print(f"run directory: {run_dir}  (next: dpgkit eval {run_dir})")


def _train_seeds(args: argparse.Namespace, config: DDPGConfig, out: Path, console: Any) -> int:
    from dpgkit.seeds import parse_seeds, train_seeds

    if args.seed is not None:
        raise DpgkitError("give either --seed or --seeds, not both")
    seeds = parse_seeds(args.seeds)
    console.print(f"dpgkit: training {config.preset} on {config.env_id}, seeds {seeds} "
                  f"({config.total_env_steps} env steps each) -> {out}")
    summary = train_seeds(config, seeds, out, args.workers, report=console.print)
    finished = len(seeds) - len(summary["diverged"])
    console.print(f"over {finished} of {len(seeds)} seeds: eval return "
                  f"{summary['eval_return_mean']:.2f} +- {summary['eval_return_std']:.2f} "
                  f"({summary['wall_seconds']:.0f} s); summary: {out / rundir.SUMMARY}")
    return EXIT_DIVERGED if summary["diverged"] else 0


def _plot(args: argparse.Namespace) -> int:
    from dpgkit.plotting import plot_runs

    for path in plot_runs(args.run_dirs, args.output, args.metric, args.reference,
                          args.labels):
        print(f"wrote {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from dpgkit.checkpoint import META_FILE, find_checkpoint
    from dpgkit.export import export_policy
    from dpgkit.obs_layout import describe_layout

    path = export_policy(args.run_dir, args.format, args.output, args.policy)
    print(f"wrote {path}: raw observation (B, obs_dim) -> env-scaled action (B, action_dim)")
    meta = json.loads((find_checkpoint(args.run_dir) / META_FILE).read_text())
    layout = describe_layout(meta["env"].get("obs_layout"))
    if layout:  # a Dict/Tuple observation: the model takes its flat vector
        print(f"the observation is the flat vector of the env's Dict/Tuple: {layout}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from dpgkit.eval_cli import eval_command

    return eval_command(args)


def _tune(args: argparse.Namespace) -> int:
    from dpgkit.tune_cli import tune_command

    return tune_command(args, _config_file(args.config))


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """dpgkit's own warnings as one line each; everyone else's as Python prints them."""
    if issubclass(category, DpgkitWarning):
        print(f"dpgkit: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dpgkit`` command; returns the exit status."""
    warnings.showwarning = _show_warning
    args = build_parser().parse_args(argv)
    try:
        commands = {"train": _train, "eval": _eval, "plot": _plot, "export": _export,
                    "tune": _tune}
        return commands[args.command](args)
    except Interrupted as stop:
        print(f"dpgkit: stopped by {stop}", file=sys.stderr)
        return 128 + stop.signum  # 130 for SIGINT, 143 for SIGTERM
    except (Diverged, EnvFailedMidRun, WriteFailed) as error:
        print(f"dpgkit: error: {error}", file=sys.stderr)
        return (EXIT_DIVERGED if isinstance(error, Diverged) else
                EXIT_ENV_FAILED if isinstance(error, EnvFailedMidRun) else EXIT_WRITE_FAILED)
    except DpgkitError as error:
        print(f"dpgkit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # outside training (there SIGINT writes a checkpoint first)
        print("dpgkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

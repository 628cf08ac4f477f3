"""The ``dpgkit`` command: ``dpgkit train`` and ``dpgkit eval``.

Every :class:`~dpgkit.config.DDPGConfig` field is a ``train`` flag of the same name
(``--tau 0.005``; ``--actor-lr`` is accepted for ``--actor_lr``), with the field's documentation
as its help. Bad input ends with one line ``dpgkit: error: ...`` and exit status 2.
"""

import argparse
import ast
import json
import re
import sys
import time
import typing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from dpgkit.config import PRESETS, DDPGConfig, TD3Config, field_docs, preset_config
from dpgkit.errors import Diverged, DpgkitError, DpgkitWarning, Interrupted, writable_directory
from dpgkit.reference import TD3_CURVES

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
SHORT_FLAGS = {"env_id": "--env", "total_env_steps": "--steps"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        if message.endswith("expected one argument"):  # e.g. --actor_lr -1e-3
            message += " (a value starting with '-' goes after '=', as in --actor_lr=-1e-3)"
        self.exit(EXIT_BAD_INPUT, f"dpgkit: error: {message} (see {self.prog} --help)\n")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace(" ", ",").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer sizes such as 256,256, got {text!r}"
                                         ) from None


def _parse_kwargs(text: str) -> dict[str, Any]:
    """A JSON object, or key=value pairs (key:value too, as rl-zoo writes them) separated by
    commas or spaces, each value read as JSON or a Python literal if it is one, else a string:
    'g=9.81,max_episode_steps=100' -> {'g': 9.81, 'max_episode_steps': 100}."""
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"not a valid JSON object ({error})") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
        return value
    kwargs = {}
    for item in re.split(r"[\s,]+(?=[A-Za-z_]\w*[=:])", text):
        key, value = re.split(r"[=:]", item, maxsplit=1) if re.search(r"[=:]", item) else (
            item, None)
        if value is None or not key.isidentifier():
            raise argparse.ArgumentTypeError(f"expected a JSON object or key=value pairs such "
                                             f"as g=9.81,max_episode_steps=100, got {text!r}")
        kwargs[key] = _literal(value.rstrip(","))
    return kwargs


def _literal(text: str) -> Any:
    for read in (json.loads, ast.literal_eval):
        try:
            return read(text)
        except (ValueError, SyntaxError):
            pass
    return text


def _flag_type(annotation: Any) -> Callable[[str], Any]:
    if typing.get_origin(annotation) is tuple:
        return _parse_sizes
    if typing.get_origin(annotation) is dict:
        return _parse_kwargs
    return {bool: _parse_bool}.get(annotation, annotation)


def _metavar(annotation: Any) -> str:
    if typing.get_origin(annotation) is tuple:
        return "SIZES"
    if typing.get_origin(annotation) is dict:
        return "KWARGS"
    return {int: "N", float: "X", bool: "BOOL", str: "NAME"}[annotation]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dpgkit", description="Deterministic policy-gradient RL: DDPG and TD3.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train an agent and write a run directory",
                                description="Train DDPG or TD3; every config field is a flag.")
    train.add_argument("--preset", default=None, choices=list(PRESETS),
                       help="settings to start from (default: ddpg)")
    train.add_argument("--out", type=Path, default=None,
                       help="run directory (default: runs/<env>-<preset>-seed<N>-<time>)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its newest checkpoint (its saved "
                            "config is used; only --steps may change)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run directory --out if it already holds a run")
    train.add_argument("--config", type=Path, default=None, metavar="FILE",
                       help="a JSON file of config fields (applied over the preset; flags win)")
    train.add_argument("--seeds", default=None, metavar="SEEDS",
                       help="train several seeds (0-4 or 0,3,7) in parallel into OUT/seed<N>, "
                            "with an aggregate OUT/summary.json")
    train.add_argument("--workers", type=int, default=None, metavar="N",
                       help="with --seeds: runs at a time (default: one per core)")
    hints = typing.get_type_hints(TD3Config)
    for name, doc in field_docs().items():
        if name == "preset":
            continue
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if name in SHORT_FLAGS:
            flags.insert(0, SHORT_FLAGS[name])
        preset = "ddpg" if hasattr(PRESETS["ddpg"], name) else "td3"
        default = getattr(PRESETS[preset], name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        many = {"nargs": "+"} if typing.get_origin(hints[name]) is dict else {}
        train.add_argument(*flags, dest=name, type=_flag_type(hints[name]), default=None,
                           metavar=_metavar(hints[name]), help=f"{doc} ({preset}: {shown})",
                           **many)

    plot = commands.add_parser("plot", help="plot runs against env steps (PNG and SVG)")
    plot.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                      help="run directories, or --seeds directories (drawn as mean +- std)")
    plot.add_argument("-o", "--output", type=Path, default=Path("plot.png"),
                      help="output file; .png and .svg are both written (default: plot.png)")
    plot.add_argument("--metric", default="eval_return_mean",
                      help="a metrics.csv column (default: eval_return_mean)")
    plot.add_argument("--reference", default=None, metavar="TASK",
                      help="overlay TD3's published curve for TASK (any case; an env id such "
                           "as HalfCheetah-v5 works): " + ", ".join(TD3_CURVES))
    plot.add_argument("--labels", nargs="+", default=None, metavar="LABEL",
                      help="one legend label per RUN_DIR (default: the shortest ends of their "
                           "paths that tell them apart)")

    export = commands.add_parser("export", help="export the policy as a standalone model")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    export.add_argument("--format", choices=["onnx", "torchscript"], default="onnx",
                        help="onnx (opset 18) or torchscript (default: onnx)")
    export.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="output file (default: RUN_DIR/policy.onnx or RUN_DIR/policy.pt; "
                             "for a checkpoint directory, policy-<its name>.onnx or .pt in its "
                             "run)")

    evaluate = commands.add_parser("eval", help="evaluate a trained policy without noise")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                          help="a run directory, a checkpoint directory, or a policy file written "
                               "by the Python API's save")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes (default: 10)")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="episode k starts from env.reset(seed=SEED + k) (default: 0)")
    evaluate.add_argument("--video", type=Path, default=None, metavar="DIR",
                          help="record every episode to DIR as mp4 (no display needed; MuJoCo "
                               "tasks need Debian's libosmesa6)")
    evaluate.add_argument("--render", action="store_true",
                          help="show the episodes in a window (needs a display)")
    evaluate.add_argument("--env", default=None, metavar="NAME",
                          help="the environment to evaluate on (default: the checkpoint's). "
                               "Needed when the checkpoint's env names a Python module "
                               "(module:Class or module:Id-v0): dpgkit imports such a module "
                               "only when you name it")
    return parser


def _default_run_dir(config: DDPGConfig, seeds: str | None = None) -> Path:
    env = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.env_id)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    which = f"seeds{seeds.replace(',', '_')}" if seeds else f"seed{config.seed}"
    return Path("runs") / f"{env}-{config.preset}-{which}-{stamp}"


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
    run_dir = args.out or _default_run_dir(config, args.seeds)
    if args.overwrite:  # the env is checked first, so a refused run deletes nothing
        make_env(config.env_id, **config.env_kwargs).close()
        _remove_run_dir(run_dir)
    elif run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise DpgkitError(_taken_message(run_dir))
    if args.seeds is not None:
        return _train_seeds(args, config, run_dir, console)
    summary = train(config, run_dir, console, progress=not args.no_progress)
    _print_summary(console, summary, run_dir)
    return 0


def _resume(args: argparse.Namespace, overrides: dict[str, Any], console: Any) -> int:
    from dpgkit.train import train

    steps = overrides.pop("total_env_steps", None)
    given = sorted(overrides) + [f for f in ("out", "config", "seeds", "preset", "overwrite",
                                             "workers") if getattr(args, f)]
    if given:
        raise DpgkitError(f"--resume continues a run with its saved config; drop "
                          f"{', '.join('--' + g for g in given)} (only --steps may change)")
    before = _done_before(args.resume)
    summary = train(None, args.resume, console, progress=not args.no_progress,
                    resume_steps=steps)
    session = (summary["env_steps"] - before[0], summary["wall_seconds"] - before[1]
               ) if before else None
    _print_summary(console, summary, args.resume, session)
    return 0


def _done_before(run_dir: Path) -> tuple[int, float] | None:
    """The env steps and training seconds of the newest checkpoint of ``run_dir`` (None if it
    cannot be read: the resume then says why)."""
    from dpgkit.checkpoint import META_FILE, find_checkpoint

    try:
        meta = json.loads((find_checkpoint(run_dir) / META_FILE).read_text())
        return int(meta["counters"]["env_steps"]), float(meta["wall_seconds"])
    except (DpgkitError, OSError, ValueError, KeyError, TypeError):
        return None


def _taken_message(run_dir: Path) -> str:
    """Why an --out that holds files is refused, and the flags that take it."""
    if (run_dir / "metrics.csv").is_file():
        return (f"--out {run_dir} already exists and holds a run: continue it with dpgkit train "
                f"--resume {run_dir}, replace it with --overwrite, or choose another --out")
    return (f"--out {run_dir} already exists and is not empty: choose another --out (--resume "
            "continues a dpgkit run and --overwrite replaces one; neither touches other files)")


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


# what dpgkit writes into a run directory (train, eval, export); --overwrite deletes nothing else
RUN_FILES = {"config.json", "metrics.csv", "summary.json", "curve.png", "eval.json",
             "divergence.json", "checkpoints", "videos", "policy.onnx", "policy.pt"}


def _foreign_entries(run_dir: Path, seeds: bool = True) -> list[str]:
    """The entries of ``run_dir`` that dpgkit does not write into a run (or, with ``seeds``,
    into a directory of ``seed<N>/`` runs), relative to ``run_dir``."""
    foreign = []
    for entry in sorted(run_dir.iterdir()):
        name = entry.name
        if seeds and entry.is_dir() and name.startswith("seed") and name[4:].isdigit():
            foreign += [f"{name}/{inner}" for inner in _foreign_entries(entry, seeds=False)]
        elif not (name in RUN_FILES or name.startswith("events.out.tfevents.")
                  or (name.startswith("policy") and name.endswith((".onnx", ".pt")))):
            foreign.append(name)
    return foreign


def _remove_run_dir(run_dir: Path) -> None:
    """Delete an earlier run's directory for --overwrite, never anything that is not one."""
    import shutil

    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise DpgkitError(f"--out {run_dir} is a file, not a run directory: choose another "
                          "--out (--overwrite replaces only an earlier run)")
    if not any(run_dir.iterdir()):
        return
    is_run = (run_dir / "metrics.csv").is_file() or any(run_dir.glob("seed*/metrics.csv"))
    foreign = _foreign_entries(run_dir)
    if not is_run or foreign:
        what = ("no metrics.csv" if not is_run
                else "files dpgkit did not write: " + ", ".join(foreign[:5])
                + (", ..." if len(foreign) > 5 else ""))
        raise DpgkitError(f"{run_dir} does not look like a dpgkit run directory ({what}); "
                          "--overwrite deletes only runs: remove it yourself or choose "
                          "another --out")
    shutil.rmtree(run_dir)


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
                  f"({summary['wall_seconds']:.0f} s); summary: {out / 'summary.json'}")
    return EXIT_DIVERGED if summary["diverged"] else 0


def _plot(args: argparse.Namespace) -> int:
    from dpgkit.plotting import plot_runs

    for path in plot_runs(args.run_dirs, args.output, args.metric, args.reference,
                          args.labels):
        print(f"wrote {path}")
    return 0


def _eval_env_id(saved: Any, given: str | None) -> str:
    """The env to evaluate on: ``--env``, or the checkpoint's own id unless it names a module,
    since making such an env imports (runs) that module: a stranger's checkpoint must not
    choose code to run."""
    if given is not None:
        return given
    if isinstance(saved, str) and saved.startswith("dpgkit-instance/"):
        raise DpgkitError("this run was trained on an env object given to the Python API, which "
                          "the command line cannot rebuild: pass --env with a Gymnasium id or "
                          "module:Class that makes the same env, or evaluate it in Python")
    if not isinstance(saved, str) or ":" in saved:
        raise DpgkitError(f"the checkpoint's environment {saved!r} names a Python module, and "
                          "making it would import (run) that module; if you trust it, name it "
                          f"yourself: --env {saved}")
    return saved


def _export(args: argparse.Namespace) -> int:
    from dpgkit.export import export_policy

    path = export_policy(args.run_dir, args.format, args.output)
    print(f"wrote {path}: raw observation (B, obs_dim) -> env-scaled action (B, action_dim)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from dpgkit.envs import ActionScaler, check_fits, evaluate, make_env
    from dpgkit.rendering import make_video_env, make_window_env
    from dpgkit.saved import read_model

    if args.episodes < 1:
        raise DpgkitError(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        raise DpgkitError(f"--seed must be >= 0, got {args.seed}")
    if args.render and args.video is not None:
        raise DpgkitError("give --render (a window) or --video DIR (mp4 files), not both")
    if args.video is not None:
        existed = args.video.exists()
        writable_directory(args.video, "--video")
        if not existed:  # RecordVideo makes it, and warns about a folder that already exists
            args.video.rmdir()
    loaded, _ = read_model(args.run_dir)  # a run, a checkpoint, or a policy file of save()
    agent, saved = loaded.agent, loaded.env
    env_id = _eval_env_id(saved["env_id"], args.env)
    kwargs = agent.config.env_kwargs if args.env is None else {}
    env = (make_video_env(env_id, args.video, kwargs) if args.video
           else make_window_env(env_id, kwargs) if args.render else make_env(env_id, **kwargs))
    try:
        check_fits(env, env_id, saved)
    except DpgkitError:
        env.close()
        raise
    returns = evaluate(agent.act, env, ActionScaler.for_space(env.action_space),
                       [args.seed + k for k in range(args.episodes)])
    env.close()  # finishes writing the last video
    result = {"env_id": saved["env_id"], "episodes": args.episodes, "seed": args.seed,
              "return_mean": float(returns.mean()), "return_std": float(returns.std()),
              "return_min": float(returns.min()), "return_max": float(returns.max()),
              "returns": returns.tolist()}
    table = Table(title=f"{result['env_id']}: {args.episodes} episodes, no exploration noise")
    for column in ("mean", "std", "min", "max"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{result['return_' + c]:.2f}" for c in ("mean", "std", "min", "max")))
    Console().print(table)
    if args.run_dir.joinpath("checkpoints").is_dir():
        (args.run_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.video:
        print(f"videos: {', '.join(sorted(p.name for p in args.video.glob('*.mp4')))} in "
              f"{args.video}")
    return 0


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
        commands = {"train": _train, "eval": _eval, "plot": _plot, "export": _export}
        return commands[args.command](args)
    except Interrupted as stop:
        print(f"dpgkit: stopped by {stop}", file=sys.stderr)
        return 128 + stop.signum  # 130 for SIGINT, 143 for SIGTERM
    except Diverged as error:
        print(f"dpgkit: error: {error}", file=sys.stderr)
        return EXIT_DIVERGED
    except DpgkitError as error:
        print(f"dpgkit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # outside training (there SIGINT writes a checkpoint first)
        print("dpgkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

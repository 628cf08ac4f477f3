"""The ``dpgkit`` command's flags: ``train`` gets one per config field, with the field's name,
documentation, type and choices (:mod:`dpgkit.config`), plus the flags of a run (``--preset``,
``--out``, ``--resume``, ...); ``plot``, ``export`` and ``eval`` have their own few, ``tune``
its own in :mod:`dpgkit.tune_flags`.
:mod:`dpgkit.cli` runs the commands.
"""

import argparse
import ast
import dataclasses
import json
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from dpgkit.agent import POLICIES
from dpgkit.config_dict import RENAMED
from dpgkit.fields import field_error
from dpgkit.presets import PRESETS
from dpgkit.reference import TD3_CURVES
from dpgkit.td7_config import TD7Config
from dpgkit.tune_flags import add_tune_parser

EXIT_BAD_INPUT = 2
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
    if annotation == float | None:  # an optional number: given as a number
        return float
    return {bool: _parse_bool}.get(annotation, annotation)


def _choice_type(field: dataclasses.Field) -> Callable[[str], str]:
    """The flag's value, refused with the field's own message if it is none of its choices."""
    def parse(text: str) -> str:
        message = field_error(field, text)
        if message is not None:
            raise argparse.ArgumentTypeError(message)
        return text
    return parse


def _metavar(annotation: Any) -> str:
    if typing.get_origin(annotation) is tuple:
        return "SIZES"
    if typing.get_origin(annotation) is dict:
        return "KWARGS"
    if annotation == float | None:
        return "X"
    return {int: "N", float: "X", bool: "BOOL", str: "NAME"}[annotation]


def add_policy_flag(parser: argparse.ArgumentParser) -> None:
    """``--policy``: which of a trained agent's policies ``eval`` and ``export`` use."""
    parser.add_argument("--policy", choices=POLICIES, default="deployed",
                        help="deployed: the one training evaluates (TD7: its checkpointed "
                             "policy); current: the one being trained when the checkpoint was "
                             "written (the same for DDPG and TD3) (default: deployed)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dpgkit",
                     description="Deterministic policy-gradient RL: DDPG, TD3 and TD7.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train an agent and write a run directory",
                                description="Train DDPG, TD3 or TD7; every config field is a flag.")
    train.add_argument("--preset", default=None, choices=list(PRESETS),
                       help="settings to start from (default: ddpg)")
    train.add_argument("--out", type=Path, default=None,
                       help="run directory (default: runs/<env>-<preset>-seed<N>-<time>)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its newest usable checkpoint, or "
                            "from RUN_DIR/checkpoints/step-N (its saved config is used; only "
                            "--steps and --torch_threads may change)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run directory --out if it already holds a run")
    train.add_argument("--config", type=Path, default=None, metavar="FILE",
                       help="a JSON file of config fields (applied over the preset; flags win)")
    train.add_argument("--seeds", default=None, metavar="SEEDS",
                       help="train several seeds (0-4 or 0,3,7) in parallel into OUT/seed<N>, "
                            "with an aggregate OUT/summary.json")
    train.add_argument("--workers", type=int, default=None, metavar="N",
                       help="with --seeds: runs at a time (default: as many as the cores hold "
                            "at --torch_threads each)")
    hints = typing.get_type_hints(TD7Config)
    for field in dataclasses.fields(TD7Config):
        name, doc, choices = field.name, field.metadata["doc"], field.metadata["choices"]
        if name == "preset":
            continue
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if name in SHORT_FLAGS:
            flags.insert(0, SHORT_FLAGS[name])
        preset = next(p for p in ("ddpg", "td3", "td7") if hasattr(PRESETS[p], name))
        default = getattr(PRESETS[preset], name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        many = {"nargs": "+"} if typing.get_origin(hints[name]) is dict else {}
        train.add_argument(*flags, dest=name, default=None, choices=choices,
                           type=_choice_type(field) if choices else _flag_type(hints[name]),
                           metavar=None if choices else _metavar(hints[name]),
                           help=f"{doc} ({preset}: {shown})", **many)
    for old, name in RENAMED.items():  # the flags' names before they said their unit
        train.add_argument(f"--{old}", f"--{old.replace('_', '-')}", dest=name, default=None,
                           type=_flag_type(hints[name]), help=argparse.SUPPRESS)

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
                             "run; with --policy current, policy-current in place of policy)")
    add_policy_flag(export)

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
    add_policy_flag(evaluate)
    add_tune_parser(commands, _parse_kwargs)
    return parser

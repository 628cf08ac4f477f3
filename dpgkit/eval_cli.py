"""``dpgkit eval`` from its flags: which env (never one a stranger's checkpoint names as code),
the episodes without noise (:func:`dpgkit.evaluation.evaluate`), a table of their returns, and
``eval.json`` in a run directory; optionally a window or mp4 videos."""

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from dpgkit import rundir
from dpgkit.envs import ActionScaler, check_fits, make_env
from dpgkit.errors import DpgkitError, writable_directory
from dpgkit.evaluation import evaluate
from dpgkit.rendering import make_video_env, make_window_env
from dpgkit.saved import read_model


def eval_command(args: argparse.Namespace) -> int:
    """Check the flags, make the env (it must fit the policy), play the episodes, print their
    table; a run directory also gets ``eval.json``."""
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
    act = loaded.act(args.policy, f"--policy {args.policy}")
    env_id = eval_env_id(saved["env_id"], args.env)
    kwargs = agent.config.env_arguments()  # another env (--env) keeps the run's episode limit
    if args.env is not None:
        kwargs = {k: v for k, v in kwargs.items() if k == "max_episode_steps"}
    env = (make_video_env(env_id, args.video, kwargs) if args.video
           else make_window_env(env_id, kwargs) if args.render else make_env(env_id, **kwargs))
    try:
        check_fits(env, env_id, saved)
    except DpgkitError:
        env.close()
        raise
    returns = evaluate(act, env, ActionScaler.for_space(env.action_space),
                       [args.seed + k for k in range(args.episodes)])
    env.close()  # finishes writing the last video
    result = {"env_id": saved["env_id"], "policy": args.policy, "episodes": args.episodes,
              "seed": args.seed,
              "return_mean": float(returns.mean()), "return_std": float(returns.std()),
              "return_min": float(returns.min()), "return_max": float(returns.max()),
              "returns": returns.tolist()}
    table = Table(title=f"{result['env_id']}: {args.episodes} episodes, no exploration noise")
    table.add_column("policy")
    for column in ("mean", "std", "min", "max"):
        table.add_column(column, justify="right")
    table.add_row(args.policy, *(f"{result['return_' + c]:.2f}"
                                 for c in ("mean", "std", "min", "max")))
    Console().print(table)
    if rundir.checkpoints_dir(args.run_dir).is_dir():
        rundir.write_json(args.run_dir / rundir.EVAL, result)
    if args.video:
        print(f"videos: {', '.join(sorted(p.name for p in args.video.glob('*.mp4')))} in "
              f"{args.video}")
    return 0


def eval_env_id(saved: Any, given: str | None) -> str:
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

"""Section 1 of the speed benchmark (benchmarks/speed.py): env steps per second while
learning, dpgkit's Trainer against Stable-Baselines3 at identical settings."""

import argparse
import dataclasses
import itertools
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import speed_common
from speed_common import (
    CPU_NOTE,
    NEVER,
    bf16_skip_reason,
    failed_cell,
    load_cell,
    log,
    shared_mark,
    stopwatch,
    table_start,
)

# ---------------------------------------------------------------------------------------------
# 1. Learning speed: dpgkit Trainer against SB3, at identical settings
# ---------------------------------------------------------------------------------------------

def shared_settings(args: argparse.Namespace, algo: str, env_id: str, threads: int
                    ) -> dict[str, Any]:
    """The settings both implementations get. gamma, tau and TD3's target smoothing and policy
    delay come from dpgkit's preset of the same name (``ddpg``: gamma 0.98; ``td3``: 0.99), so
    the two sides are set from one source."""
    from dpgkit.presets import preset_config

    preset = preset_config(algo)
    settings = dict(
        algo=algo, env_id=env_id, threads=threads, hidden=args.hidden,
        batch_size=args.batch_size, lr=args.lr, buffer_size=args.buffer_size,
        warmup=args.warmup, burn_in=args.burn_in, steps=args.steps, noise=args.noise,
        gamma=preset.gamma, tau=preset.tau,
    )
    if algo == "td3":
        settings |= dict(target_noise=preset.target_noise,
                         target_noise_clip=preset.target_noise_clip,
                         policy_delay=preset.policy_delay)
    return settings


def measure_dpgkit_learning(spec: dict[str, Any]) -> dict[str, Any]:
    """Env steps/s of dpgkit's Trainer: warm-up and burn-in untimed, then ``steps`` timed
    ``Trainer.step()`` calls, each one env step and one update."""
    import torch

    from dpgkit.presets import preset_config
    from dpgkit.train import Trainer

    overrides = dict(
        env_id=spec["env_id"], actor_hidden=tuple(spec["hidden"]),
        critic_hidden=tuple(spec["hidden"]), batch_size=spec["batch_size"],
        actor_lr=spec["lr"], critic_lr=spec["lr"], replay_size=spec["buffer_size"],
        warmup_steps=spec["warmup"], gamma=spec["gamma"], tau=spec["tau"],
        exploration_noise="gaussian", gaussian_sigma=spec["noise"], updates_per_step=1.0,
        eval_every=NEVER, total_env_steps=NEVER, torch_threads=spec["threads"], seed=0,
        bf16=spec.get("bf16", False))
    if spec["algo"] == "td3":
        overrides |= {k: spec[k] for k in ("target_noise", "target_noise_clip", "policy_delay")}
    fields = {f.name for f in dataclasses.fields(preset_config(spec["algo"]))}
    for name in ("checkpoint_every", "checkpoint_every_steps"):  # its name before and after
        if name in fields:
            overrides[name] = 0  # periodic checkpoints off: only "at the end", never
    config = preset_config(spec["algo"], **overrides)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp) / "run")
        for _ in range(spec["warmup"] + spec["burn_in"]):
            trainer.step()
        steps0, updates0 = trainer.env_steps, trainer.agent.updates
        with stopwatch(spec["threads"]) as clock:
            for _ in range(spec["steps"]):
                trainer.step()
        steps, updates = trainer.env_steps - steps0, trainer.agent.updates - updates0
        trainer.writer.close()
        trainer.envs.close()
        trainer.eval_env.close()
    check_counts("dpgkit", spec, steps, updates)
    return {"steps": steps, "updates": updates, "steps_per_s": steps / clock["seconds"],
            "torch_threads": torch.get_num_threads(), **clock}


def measure_sb3_learning(spec: dict[str, Any]) -> dict[str, Any]:
    """Env steps/s of SB3's DDPG/TD3 ``learn``, in two calls.

    SB3 counts like dpgkit: each ``collect_rollouts`` (train_freq=1) takes one env step,
    ``num_timesteps += 1``, then trains one gradient step if ``num_timesteps > learning_starts``.
    So ``learn(warmup + burn_in)`` makes exactly ``burn_in`` updates (untimed), and
    ``learn(steps, reset_num_timesteps=False)`` continues without resetting the env and makes
    exactly ``steps`` env steps and ``steps`` updates (timed). Both counts are checked.
    """
    import gymnasium as gym
    import torch
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(spec["threads"])
    env = gym.make(spec["env_id"])
    action_dim = env.action_space.shape[0]
    kwargs: dict[str, Any] = dict(
        policy_kwargs=dict(net_arch=list(spec["hidden"])), learning_rate=spec["lr"],
        buffer_size=spec["buffer_size"], learning_starts=spec["warmup"],
        batch_size=spec["batch_size"], tau=spec["tau"], gamma=spec["gamma"], train_freq=1,
        gradient_steps=1, seed=0, device="cpu", verbose=0,
        action_noise=NormalActionNoise(np.zeros(action_dim), spec["noise"] * np.ones(action_dim)))
    if spec["algo"] == "td3":
        kwargs |= dict(policy_delay=spec["policy_delay"],
                       target_policy_noise=spec["target_noise"],
                       target_noise_clip=spec["target_noise_clip"])
    model = (TD3 if spec["algo"] == "td3" else DDPG)("MlpPolicy", env, **kwargs)
    model.learn(spec["warmup"] + spec["burn_in"])
    if model._n_updates != spec["burn_in"]:
        raise RuntimeError(f"SB3 made {model._n_updates} updates in warm-up + burn-in, "
                           f"expected {spec['burn_in']}")
    steps0, updates0 = model.num_timesteps, model._n_updates
    with stopwatch(spec["threads"]) as clock:
        model.learn(spec["steps"], reset_num_timesteps=False)
    steps, updates = model.num_timesteps - steps0, model._n_updates - updates0
    check_counts("SB3", spec, steps, updates)
    return {"steps": steps, "updates": updates, "steps_per_s": steps / clock["seconds"],
            "torch_threads": torch.get_num_threads(), **clock}


def check_counts(name: str, spec: dict[str, Any], steps: int, updates: int) -> None:
    """Refuse a measurement whose timed window was not exactly ``steps`` steps and updates."""
    if steps != spec["steps"] or updates != spec["steps"]:
        raise RuntimeError(f"{name} timed {steps} env steps and {updates} updates, expected "
                           f"{spec['steps']} of each")


LEARNING_RUNS = {"dpgkit": {"kind": "dpgkit"}, "SB3": {"kind": "sb3"},
                 "bf16": {"kind": "dpgkit", "bf16": True}}  # name -> what its spec adds


def learning_runs(settings: dict[str, Any], names: list[str], repeats: int
                  ) -> dict[str, list[dict[str, Any]]]:
    """The records of ``repeats`` rounds of the runs ``names`` (keys of ``LEARNING_RUNS``) in
    turn, so that drift on a shared machine hits each; a run that fails is not run again."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name, records in runs.items():
            if records and "failed" in records[-1]:
                continue
            record = speed_common.run_child({**settings, **LEARNING_RUNS[name]})
            records.append(record)
            outcome = failed_cell(record) if "failed" in record else (
                f"{record['steps_per_s']:.1f} steps/s (torch threads {record['torch_threads']}, "
                f"cpu {record['cpu_share']:.2f}, load {load_cell(record)})")
            log(f"{settings['env_id']} {settings['algo']} threads={settings['threads']} repeat "
                f"{repeat + 1} {name}: {outcome}")
    return runs


def rates_cell(records: list[dict[str, Any]]) -> str:
    """Steps/s of each run, or how it failed."""
    return ", ".join(failed_cell(r) if "failed" in r else f"{r['steps_per_s']:.1f}"
                     for r in records)


def median_cell(records: list[dict[str, Any]]) -> str:
    """Median steps/s of the runs; '-' where one failed."""
    if any("failed" in r for r in records):
        return "-"
    return f"{statistics.median(r['steps_per_s'] for r in records):.1f}"


def ratio_cell(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    """Median of the per-pair steps/s ratios, marked where a run of the pairs shared its cores;
    '-' where one failed."""
    if any("failed" in r for r in ours + theirs):
        return "-"
    ratio = statistics.median(o["steps_per_s"] / t["steps_per_s"]
                              for o, t in zip(ours, theirs, strict=True))
    return f"{ratio:.2f}{shared_mark(ours + theirs)}"


def rounds_cell(runs: dict[str, list[dict[str, Any]]], cell: Callable[[dict[str, Any]], str]
                ) -> str:
    """``cell`` of each run: a round's runs joined by '/', the rounds by ', ' ('-': failed or not
    run)."""
    rounds = itertools.zip_longest(*runs.values())
    return ", ".join("/".join("-" if r is None or "failed" in r else cell(r) for r in one)
                     for one in rounds)


def learning_row(settings: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> str:
    """One row of section 1's table: a setting's runs, their medians, ratios, CPU shares and
    loads."""
    ours, theirs = runs["dpgkit"], runs["SB3"]
    cells = [settings["env_id"], settings["algo"], settings["threads"], settings["gamma"],
             rates_cell(ours), rates_cell(theirs), median_cell(ours), median_cell(theirs),
             ratio_cell(ours, theirs)]
    if "bf16" in runs:
        cells += [rates_cell(runs["bf16"]), ratio_cell(runs["bf16"], theirs)]
    cells += [rounds_cell(runs, lambda r: f"{r['cpu_share']:.2f}"), rounds_cell(runs, load_cell)]
    return "| " + " | ".join(map(str, cells)) + " |"


def learning_section(args: argparse.Namespace) -> str:
    """Section 1: alternate dpgkit and SB3 runs per (env, algo, threads); table the results."""
    skipped = bf16_skip_reason() if args.bf16 else ""
    names = ["dpgkit", "SB3"] + ["bf16"] * (args.bf16 and not skipped)
    bf16_head = " dpgkit `bf16` steps/s (each repeat) | `bf16`/SB3 (median) |" * ("bf16" in names)
    runs_head = "/".join(names)
    head = ("| env | algo | threads | gamma | dpgkit steps/s (each repeat) | SB3 steps/s (each "
            "repeat) | dpgkit median | SB3 median | dpgkit/SB3 (median) |" + bf16_head
            + f" cpu share, {runs_head} (each repeat) | 1-min load at start→end, {runs_head} "
            "(each repeat) |")
    rows = table_start(head)
    for env_id in args.envs:
        for algo in args.algos:
            for threads in args.threads:
                settings = shared_settings(args, algo, env_id, threads)
                rows.append(learning_row(settings, learning_runs(settings, names, args.repeats)))
    from dpgkit.presets import preset_config

    td3 = preset_config("td3")
    hidden = "-".join(map(str, args.hidden))
    intro = (f"## 1. Env steps per second while learning (one update per env step)\n\n"
             f"Both sides: networks {hidden} (actor and critic), batch {args.batch_size}, "
             f"learning rate {args.lr:g} (actor and critic), buffer {args.buffer_size:,}, "
             f"warm-up {args.warmup} uniform-random steps, tau and gamma from dpgkit's preset, "
             f"Gaussian action noise sigma {args.noise} in the [-1, 1] action scale; TD3: target "
             f"noise {td3.target_noise} clipped at {td3.target_noise_clip}, policy delay "
             f"{td3.policy_delay} (dpgkit's td3 preset). Untimed: warm-up + {args.burn_in} "
             f"learning steps; timed: {args.steps} learning steps. Runs alternate dpgkit, SB3 "
             f"({args.repeats} pairs); the ratio is the median of the per-pair ratios."
             + (" With `--bf16`, each pair also runs dpgkit with `bf16=True` (opt-in: the "
                "hidden-to-hidden products in bfloat16; SB3 has no such mode)." if args.bf16
                else "") + " " + CPU_NOTE + "\n\n")
    return intro + "\n".join(rows) + "\n" + (f"\n{skipped}.\n" if skipped else "")

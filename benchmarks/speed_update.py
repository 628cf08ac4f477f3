"""Section 2 of the speed benchmark (benchmarks/speed.py): dpgkit's DDPG update alone, its
updates per second against this machine's matmul rate at the update's shapes (the products and
their rate: benchmarks/speed_gemms.py)."""

import argparse
import dataclasses
import statistics
from typing import Any

import numpy as np
import speed_common
from speed_common import (
    CPU_NOTE,
    HALFCHEETAH_ACTION_DIM,
    HALFCHEETAH_OBS_DIM,
    bf16_skip_reason,
    failed_cell,
    failed_row,
    fill,
    load_cell,
    log,
    mean_seconds,
    random_transitions,
    shared_mark,
    stopwatch,
    table_start,
)
from speed_gemms import ddpg_update_gemms, gemm_table, matmul_mix_rate, square_matmul_rate

# ---------------------------------------------------------------------------------------------
# 2. The update alone: updates/s, FLOPs per update, and this machine's matmul rate
# ---------------------------------------------------------------------------------------------

def measure_update(spec: dict[str, Any]) -> dict[str, Any]:
    """Updates/s of dpgkit's DDPG update at HalfCheetah shapes, with and without sampling, the
    time of sampling alone, and the matmul rate of the update's products, in one process.

    With and without sampling are timed in interleaved rounds (median taken) so drift hits both.
    The process's share of its cores and the load (:func:`stopwatch`) cover all the timing.
    """
    import torch

    from dpgkit.agent import DDPGAgent
    from dpgkit.presets import preset_config
    from dpgkit.replay import ReplayBuffer

    torch.set_num_threads(spec["threads"])
    obs_dim, action_dim, batch = HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM, spec["batch_size"]
    hidden = tuple(spec["hidden"])
    config = preset_config("ddpg", actor_hidden=hidden, critic_hidden=hidden, batch_size=batch,
                           replay_size=spec["buffer_size"], torch_threads=spec["threads"],
                           fast_update=spec["path"] != "reference", bf16=spec["path"] == "bf16")
    torch.set_flush_denormal(config.flush_denormal)  # as the Trainer does
    agent = DDPGAgent(obs_dim, action_dim, config)
    replay = fill(ReplayBuffer(spec["buffer_size"], obs_dim, action_dim),
                  random_transitions(100_000, obs_dim, action_dim))
    rng = np.random.default_rng(1)
    fixed = replay.sample(batch, rng)

    # the same update code on networks 8-8 and batch 8: its matrix products are next to nothing,
    # so its time is the part of an update that does not grow with the networks (Python, torch's
    # per-operation dispatch, launching each kernel)
    tiny_config = dataclasses.replace(config, actor_hidden=(8, 8), critic_hidden=(8, 8),
                                      batch_size=8)
    tiny_agent = DDPGAgent(obs_dim, action_dim, tiny_config)
    tiny_batch = replay.sample(8, rng)

    n = spec["updates"]
    gemms = ddpg_update_gemms(obs_dim, action_dim, hidden, hidden, batch)
    with stopwatch(spec["threads"]) as clock:
        mean_seconds(lambda: agent.update(replay.sample(batch, rng)), 50)  # warm up
        mean_seconds(lambda: tiny_agent.update(tiny_batch), 50)
        with_sampling, without_sampling, sampling, tiny = [], [], [], []
        for _ in range(3):
            with_sampling.append(mean_seconds(lambda: agent.update(replay.sample(batch, rng)), n))
            without_sampling.append(mean_seconds(lambda: agent.update(fixed), n))
            sampling.append(mean_seconds(lambda: replay.sample(batch, rng), n))
            tiny.append(mean_seconds(lambda: tiny_agent.update(tiny_batch), n))
        mix_seconds, mix_gflops = matmul_mix_rate(gemms, bf16=spec["path"] == "bf16")
        square_gflops = square_matmul_rate()
    return {"update_s_with_sampling": statistics.median(with_sampling),
            "update_s_without_sampling": statistics.median(without_sampling),
            "sample_s": statistics.median(sampling), "tiny_update_s": statistics.median(tiny),
            "flops": sum(g.flops for g in gemms),
            "gemm_mix_s": mix_seconds, "gemm_mix_gflops": mix_gflops,
            "square_gflops": square_gflops, "torch_threads": torch.get_num_threads(), **clock}


UPDATE_PATHS = {"fast": "fast (default)", "bf16": "fast, `bf16` (opt-in)",
                "reference": "reference (autograd)"}  # spec["path"] -> its name in the tables
UPDATE_HEAD = ("| threads | path | updates/s with sampling | updates/s without sampling | sample "
               "alone (us) | MFLOP/update | update GFLOP/s (no sampling) | matmul rate at the "
               "update's shapes (GFLOP/s) | fraction of it reached | 1024^3 matmul (GFLOP/s) | "
               "cpu share | 1-min load at start→end |")
SPLIT_HEAD = ("| threads | path | update (us) | its products alone (us) | fixed: the same update "
              "at 8-8 / batch 8 (us) | the rest (us) | fraction reached | fraction were the "
              "fixed part zero |")


def update_rows(threads: int, path: str, r: dict[str, Any]) -> tuple[str, str]:
    """The rows of one update measurement in section 2's two tables; its fractions (ratios of
    times taken in one process) are marked where that process shared its cores."""
    if "failed" in r:
        return (failed_row([f"{threads}", path], r, UPDATE_HEAD.count("|") - 1),
                failed_row([f"{threads}", path], r, SPLIT_HEAD.count("|") - 1))
    achieved = r["flops"] / r["update_s_without_sampling"] / 1e9
    mark = shared_mark([r])
    row = (f"| {threads} ({r['torch_threads']}) | {path} | {1 / r['update_s_with_sampling']:.1f} "
           f"| {1 / r['update_s_without_sampling']:.1f} | {r['sample_s'] * 1e6:.0f} | "
           f"{r['flops'] / 1e6:.1f} | {achieved:.1f} | {r['gemm_mix_gflops']:.1f} | "
           f"{achieved / r['gemm_mix_gflops']:.0%}{mark} | {r['square_gflops']:.1f} | "
           f"{r['cpu_share']:.2f} | {load_cell(r)} |")
    update_us, products_us, fixed_us = (1e6 * r[k] for k in (
        "update_s_without_sampling", "gemm_mix_s", "tiny_update_s"))
    split = (f"| {threads} | {path} | {update_us:.0f} | {products_us:.0f} | {fixed_us:.0f} | "
             f"{update_us - products_us - fixed_us:.0f} | {products_us / update_us:.0%}{mark} | "
             f"{products_us / (update_us - fixed_us):.0%}{mark} |")
    return row, split


def update_section(args: argparse.Namespace) -> str:
    """Section 2: one fresh process per thread count and path; table updates/s against the
    matmul rate (the bf16 path only where this CPU has native bfloat16)."""
    skipped = bf16_skip_reason()
    rows = table_start(UPDATE_HEAD)
    split = table_start(SPLIT_HEAD)
    for threads in args.threads:
        for kind in [k for k in UPDATE_PATHS if not (k == "bf16" and skipped)]:
            r = speed_common.run_child({"kind": "update", "threads": threads,
                                        "hidden": args.hidden, "batch_size": args.batch_size,
                                        "buffer_size": args.buffer_size,
                                        "updates": args.updates, "path": kind})
            row, split_row = update_rows(threads, UPDATE_PATHS[kind], r)
            rows.append(row)
            split.append(split_row)
            outcome = failed_cell(r) if "failed" in r else (
                f"{1 / r['update_s_without_sampling']:.1f} updates/s, cpu {r['cpu_share']:.2f}")
            log(f"update threads={threads} {UPDATE_PATHS[kind]}: {outcome}")
    hidden = tuple(args.hidden)
    gemms = ddpg_update_gemms(HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM, hidden, hidden,
                              args.batch_size)
    intro = (f"## 2. The DDPG update alone (no env)\n\n"
             f"dpgkit `DDPGAgent.update` on its fast path (dpgkit/fastpath.py, the default), on "
             f"the fast path with `bf16=True` (the hidden-to-hidden products in bfloat16) and on "
             f"its autograd reference path (`fast_update=False`), networks "
             f"{'-'.join(map(str, hidden))}, batch "
             f"{args.batch_size}, HalfCheetah shapes (obs {HALFCHEETAH_OBS_DIM}, action "
             f"{HALFCHEETAH_ACTION_DIM}), from a ReplayBuffer filled with {args.buffer_size:,} "
             f"transitions; {args.updates} updates per timing round, median of 3 interleaved "
             f"rounds. 'without sampling' reuses one preallocated batch. The matmul rate times "
             f"`torch.mm` on each product below (same shapes, the faster of its two layouts, same "
             f"thread count, same process; for `bf16` the hidden-to-hidden products in bfloat16) "
             f"weighted by how often the update performs it; the fraction is the update's "
             f"matmul FLOPs per second over that rate (1.0 = the update is nothing but its "
             f"matmuls). threads: asked (torch reported). {CPU_NOTE} Here the fractions are "
             f"ratios of times taken in one process, marked by that process's share.\n\n")
    where = ("\n\nWhere one update's time goes (without sampling). 'its products alone': the "
             "products below timed alone, as the matmul rate above times them. 'fixed': the same "
             "update on networks 8-8 with batch 8, whose products are next to nothing, so its "
             "time is what an update costs whatever the network size (Python, torch's "
             "per-operation dispatch, kernel launches). 'the rest': the elementwise work that "
             "grows with the networks (bias, ReLU and its mask, Adam, the soft update) and "
             "the products running slower inside the update than alone (their operands no "
             "longer all in cache). The last column is the fraction the update would reach "
             "if the fixed part cost nothing.\n\n")
    return (intro + "\n".join(rows) + (f"\n\n{skipped}." if skipped else "") + where
            + "\n".join(split)
            + "\n\nMatrix products of one update (see `ddpg_update_gemms` in "
            "benchmarks/speed_gemms.py for what is and is not counted):\n\n"
            + gemm_table(gemms))

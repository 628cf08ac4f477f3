"""Section td7 of the speed benchmark (benchmarks/speed.py): TD7's update alone (it runs on
autograd, dpgkit/td7.py), where its time goes, and so what a hand-written path like DDPG's
(dpgkit/fastpath.py) could gain: such a path removes Python, dispatch and elementwise work, never
the matrix products, so the update's time over its products' time alone bounds the gain."""

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
from speed_gemms import Gemm, backward_gemms, forward_gemms, gemm_table, matmul_mix_rate

# ---------------------------------------------------------------------------------------------
# The products of one TD7 update
# ---------------------------------------------------------------------------------------------


def td7_update_gemms(obs_dim: int, action_dim: int, zs_dim: int, hidden: int,
                     encoder_hidden: int, batch: int, actor_step: bool) -> list[Gemm]:
    """Every matrix product of one ``TD7Agent.update``, in order (``actor_step``: one of the
    updates that also step the actor, every ``policy_delay``-th).

    The networks' Linears (dpgkit/td7_networks.py; O obs, A action, Z zs_dim, H hidden, E
    encoder_hidden): f: O->E, E->E, E->Z; g: (Z+A)->E, E->E, E->Z; actor: O->H, (Z+H)->H, H->H,
    H->A; each critic: (O+A)->H, (2Z+H)->H, H->H, H->1. A Linear whose input is a concatenation
    takes its input gradient whole, as autograd does, then splits it. The passes, as
    ``TD7Agent.update`` runs them (the fixed and target encoders and the target networks are
    frozen: no weight gradients):

    1-3. encoder step: f(s') (no grad); g(f(s), a); back through g (every input gradient: zs
         needs one) and f (all but the first layer's), with every weight gradient of both
    4.   the TD target: f_target(s'), mu'(s', zs'), g_target(zs', a~), Q'_1 and Q'_2 (no grad)
    5-6. critic step: fixed f(s) and g(zs, a) (no grad), Q_1 and Q_2; back through both critics
         (weight gradients, input gradients of all but the first layer: s and a are data)
    7-10. actor step, only with ``actor_step``: fixed f(s) (no grad), mu(s, zs), fixed
         g(zs, mu), Q_1 and Q_2 (frozen); back to mu through both critics and g (input gradients
         of every layer: mu enters each first layer); back through the actor (weight gradients,
         input gradients of all but the first layer)

    Only matrix products are counted (see ``ddpg_update_gemms`` for what that leaves out; TD7
    adds ELU, AvgL1Norm, the concatenations, LAP's loss and priorities, the hard copies).
    """
    f = [(obs_dim, encoder_hidden), (encoder_hidden, encoder_hidden), (encoder_hidden, zs_dim)]
    g = [(zs_dim + action_dim, encoder_hidden), (encoder_hidden, encoder_hidden),
         (encoder_hidden, zs_dim)]
    actor = [(obs_dim, hidden), (zs_dim + hidden, hidden), (hidden, hidden), (hidden, action_dim)]
    critic = [(obs_dim + action_dim, hidden), (2 * zs_dim + hidden, hidden), (hidden, hidden),
              (hidden, 1)]
    fwd, bwd, b = forward_gemms, backward_gemms, batch
    gemms = [
        *fwd("1 encoder step: f(s') (no grad)", f, b),
        *fwd("2 encoder step: g(f(s), a)", f + g, b),
        *bwd("3 encoder step: bwd through g", g, b, weights=True, first_input=True),
        *bwd("3 encoder step: bwd through f", f, b, weights=True, first_input=False),
        *fwd("4 target: f'(s'), mu'(s', zs'), g'(zs', a~), Q'_1, Q'_2", f + actor + g, b),
        *fwd("4 target: f'(s'), mu'(s', zs'), g'(zs', a~), Q'_1, Q'_2", critic + critic, b),
        *fwd("5 critic step: fixed f(s), g(zs, a), Q_1, Q_2", f + g + critic + critic, b),
        *bwd("6 critic step: bwd through Q_1, Q_2", critic, b, weights=True, first_input=False),
        *bwd("6 critic step: bwd through Q_1, Q_2", critic, b, weights=True, first_input=False),
    ]
    if actor_step:
        gemms += [
            *fwd("7 actor step: fixed f(s), mu(s, zs), fixed g(zs, mu), Q_1, Q_2",
                 f + actor + g + critic + critic, b),
            *bwd("8 actor step: bwd to mu through Q_1, Q_2 (frozen)", critic, b, weights=False,
                 first_input=True),
            *bwd("8 actor step: bwd to mu through Q_1, Q_2 (frozen)", critic, b, weights=False,
                 first_input=True),
            *bwd("9 actor step: bwd to mu through fixed g", g, b, weights=False,
                 first_input=True),
            *bwd("10 actor step: bwd through the actor", actor, b, weights=True,
                 first_input=False),
        ]
    return gemms


def td7_cycle_gemms(*sizes: int, policy_delay: int) -> list[Gemm]:
    """The products of ``policy_delay`` updates (td7_update_gemms' sizes), one with an actor step
    (their FLOPs over policy_delay: the mean update's)."""
    return td7_update_gemms(*sizes, True) + td7_update_gemms(*sizes, False) * (policy_delay - 1)


# ---------------------------------------------------------------------------------------------
# The measurement (in a child process of speed.py)
# ---------------------------------------------------------------------------------------------

def top_operators(profile: Any, updates: int, count: int = 8) -> list[dict[str, Any]]:
    """The ``count`` torch operators of most self CPU time in ``profile``, each with its share
    of all self time and its calls per update, and the others summed as one row."""
    events = sorted(profile.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    rows = [{"name": e.key, "share": e.self_cpu_time_total / total,
             "calls": e.count / updates} for e in events[:count]]
    rows.append({"name": "all others", "calls": sum(e.count for e in events[count:]) / updates,
                 "share": sum(e.self_cpu_time_total for e in events[count:]) / total})
    return rows


def measure_td7_update(spec: dict[str, Any]) -> dict[str, Any]:
    """Updates/s of ``TD7Agent.update`` (the ``td7`` preset; ``spec`` may shrink its ``width``
    and ``batch_size``) at HalfCheetah's obs and action sizes, with and without sampling from
    its LAP replay, the same update at 8-wide networks and batch 8 (its fixed part), the rate of
    its products timed alone, and a torch profile of its operators, in one process. Rounds
    interleave (median of 3) so drift hits each timing alike."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from dpgkit.presets import preset_config
    from dpgkit.td7 import TD7Agent

    torch.set_num_threads(spec["threads"])
    obs_dim, action_dim = HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM
    sizes = {"batch_size": spec["batch_size"]} if "batch_size" in spec else {}
    if "width" in spec:  # the preset's sizes unless the spec says (tests: smaller)
        sizes |= {"actor_hidden": (spec["width"],), "critic_hidden": (spec["width"],),
                  "zs_dim": spec["width"], "encoder_hidden": spec["width"]}
    config = preset_config("td7", replay_size=spec["buffer_size"],
                           torch_threads=spec["threads"], **sizes)
    tiny_config = dataclasses.replace(config, actor_hidden=(8,), critic_hidden=(8,), zs_dim=8,
                                      encoder_hidden=8, batch_size=8)
    torch.set_flush_denormal(config.flush_denormal)  # as the Trainer does
    chunk = random_transitions(spec["buffer_size"], obs_dim, action_dim)
    agent, tiny = (TD7Agent(obs_dim, action_dim, c) for c in (config, tiny_config))
    for each in (agent, tiny):
        fill(each.make_replay(1), chunk)
    rng = np.random.default_rng(1)
    fixed = agent.replay.sample(config.batch_size, rng)
    tiny_batch = tiny.replay.sample(8, rng)

    def sampled() -> None:
        agent.update(agent.replay.sample(config.batch_size, rng))

    n = spec["updates"]  # an even count: as many actor steps in each timing
    with stopwatch(spec["threads"]) as clock:
        mean_seconds(sampled, 10)  # warm up
        mean_seconds(lambda: tiny.update(tiny_batch), 50)
        with_sampling, without_sampling, tiny_times = [], [], []
        for _ in range(3):
            with_sampling.append(mean_seconds(sampled, n))
            without_sampling.append(mean_seconds(lambda: agent.update(fixed), n))
            tiny_times.append(mean_seconds(lambda: tiny.update(tiny_batch), n))
        gemms = td7_cycle_gemms(obs_dim, action_dim, config.zs_dim, config.critic_hidden[0],
                                config.encoder_hidden, config.batch_size,
                                policy_delay=config.policy_delay)
        cycle_seconds, gflops = matmul_mix_rate(gemms)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            agent.update(fixed)
    return {"update_s_with_sampling": statistics.median(with_sampling),
            "update_s_without_sampling": statistics.median(without_sampling),
            "tiny_update_s": statistics.median(tiny_times),
            "flops": sum(g.flops for g in gemms) / config.policy_delay,
            "gemm_mix_s": cycle_seconds / config.policy_delay, "gemm_mix_gflops": gflops,
            "operators": top_operators(prof, n), "torch_threads": torch.get_num_threads(),
            **clock}


# ---------------------------------------------------------------------------------------------
# The section's tables
# ---------------------------------------------------------------------------------------------

TD7_HEAD = ("| threads | updates/s with sampling | updates/s without sampling | MFLOP/update "
            "(mean) | update GFLOP/s | matmul rate at its shapes (GFLOP/s) | fraction of it "
            "reached | cpu share | 1-min load at start→end |")
TD7_SPLIT_HEAD = ("| threads | update (us) | its products alone (us) | fixed: 8-wide, batch 8 "
                  "(us) | the rest (us) | at most, without the fixed part | at most, at the "
                  "products' rate |")


def td7_rows(threads: int, r: dict[str, Any]) -> tuple[str, str]:
    """The rows of one TD7 measurement: its rate against the products', and its time split with
    the two ceilings of a hand-written path (update time over the time left without the fixed
    part; over the products alone)."""
    if "failed" in r:
        return (failed_row([f"{threads}"], r, TD7_HEAD.count("|") - 1),
                failed_row([f"{threads}"], r, TD7_SPLIT_HEAD.count("|") - 1))
    update_us, products_us, fixed_us = (1e6 * r[k] for k in (
        "update_s_without_sampling", "gemm_mix_s", "tiny_update_s"))
    achieved = r["flops"] / r["update_s_without_sampling"] / 1e9
    mark = shared_mark([r])
    row = (f"| {threads} ({r['torch_threads']}) | {1 / r['update_s_with_sampling']:.1f} | "
           f"{1 / r['update_s_without_sampling']:.1f} | {r['flops'] / 1e6:.0f} | "
           f"{achieved:.1f} | {r['gemm_mix_gflops']:.1f} | "
           f"{achieved / r['gemm_mix_gflops']:.0%}{mark} | {r['cpu_share']:.2f} | "
           f"{load_cell(r)} |")
    split = (f"| {threads} | {update_us:.0f} | {products_us:.0f} | {fixed_us:.0f} | "
             f"{update_us - products_us - fixed_us:.0f} | "
             f"x{update_us / (update_us - fixed_us):.2f}{mark} | "
             f"x{update_us / products_us:.2f}{mark} |")
    return row, split


def operator_table(r: dict[str, Any]) -> str:
    return "\n".join(table_start("| torch operator | share of self CPU time | calls per update |")
                     + [f"| `{op['name']}` | {op['share']:.0%} | {op['calls']:.1f} |"
                        for op in r["operators"]])


def td7_section(args: argparse.Namespace) -> str:
    """Section td7: one fresh process per thread count; the update's rate, its time split and,
    for the first thread count, its operators."""
    rows = table_start(TD7_HEAD)
    split = table_start(TD7_SPLIT_HEAD)
    profiled = None
    for threads in args.threads:
        r = speed_common.run_child({"kind": "td7", "threads": threads,
                                    "buffer_size": args.td7_buffer_size,
                                    "updates": args.td7_updates})
        row, split_row = td7_rows(threads, r)
        rows.append(row)
        split.append(split_row)
        if profiled is None and "failed" not in r:
            profiled = (threads, r)
        log(f"td7 threads={threads}: " + (failed_cell(r) if "failed" in r else (
            f"{1 / r['update_s_without_sampling']:.1f} updates/s, cpu {r['cpu_share']:.2f}")))
    from dpgkit.presets import preset_config
    td7 = preset_config("td7")  # the sizes the children measure
    with_actor, without = (td7_update_gemms(
        HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM, td7.zs_dim, td7.critic_hidden[0],
        td7.encoder_hidden, td7.batch_size, actor_step) for actor_step in (True, False))
    intro = (f"## td7. The TD7 update alone (no env)\n\n"
             f"dpgkit `TD7Agent.update` (the `td7` preset, on autograd: dpgkit/td7.py), "
             f"HalfCheetah shapes (obs {HALFCHEETAH_OBS_DIM}, action {HALFCHEETAH_ACTION_DIM}), "
             f"from a LAP replay filled with {args.td7_buffer_size:,} transitions; "
             f"{args.td7_updates} updates per timing round, median of 3 interleaved rounds; "
             f"'without sampling' reuses one sampled batch (its priorities still updated). A "
             f"mean update is half with an actor step (policy_delay 2) and counts its products "
             f"so. The matmul rate times those products alone, as section 2 does. "
             f"{CPU_NOTE}\n\n")
    where = ("\n\nWhere one update's time goes, as section 2 splits DDPG's; the last two columns "
             "are ceilings on what a hand-written TD7 path could gain: the update over its time "
             "without the fixed part (Python and dispatch gone, nothing else faster), and over "
             "its products alone (everything but the products gone).\n\n")
    operators = ""
    if profiled is not None:
        operators = (f"\n\nIts operators by self CPU time ({profiled[0]} thread(s), torch "
                     f"profiler over {args.td7_updates} updates without sampling; the profiler "
                     f"adds its own cost to each call, so small operators read high):\n\n"
                     + operator_table(profiled[1]))
    return (intro + "\n".join(rows) + where + "\n".join(split) + operators
            + "\n\nMatrix products of one update with an actor step (`td7_update_gemms` in "
            "benchmarks/speed_td7.py); one without it stops after pass 6, "
            f"{sum(g.flops for g in without) / 1e6:.2f} MFLOP:\n\n" + gemm_table(with_actor))

"""Section 3 of the speed benchmark (benchmarks/speed.py): the memory of a full replay buffer,
measured, against the raw bytes of its fields."""

import argparse
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import speed_common
from speed_common import (
    HALFCHEETAH_ACTION_DIM,
    HALFCHEETAH_OBS_DIM,
    failed_cell,
    fill,
    random_transitions,
    stopwatch,
    table_start,
)

# transitions of the buffer whose fill section 3 traces: two episode ends, so its ring wraps
TRACED_CAPACITY = 2_000


# ---------------------------------------------------------------------------------------------
# 3. Replay memory
# ---------------------------------------------------------------------------------------------

def rss_bytes() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def measure_replay_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """RSS growth of a dpgkit ReplayBuffer of ``spec['capacity']``: right after construction
    (numpy's zeros are lazily mapped, so little is resident; tracemalloc, which counts them, is
    on for this part only) and after filling every slot through ``add``, with the fill's time.
    tracemalloc is off for that fill: tracing every temporary of every ``add`` makes it about 9
    times slower (a traced 1M fill took 9 minutes on a busy 2-core machine), so what ``add``
    allocates beyond the arrays is traced on a fill of a smaller buffer (:func:`traced_fill`).

    The untraced fill of 1M still takes some 45 CPU seconds (a minute and more on a busy
    machine): ``ReplayBuffer.add`` stores one stream's transitions one at a time, some 20 numpy
    calls on tiny arrays each, and splits a batch of one stream's rows into single rows too, so
    adding in chunks does not help. Only a vectorized add in dpgkit/replay.py would.
    """
    from dpgkit.replay import FIELDS as REPLAY_FIELDS
    from dpgkit.replay import ReplayBuffer

    capacity, obs_dim, action_dim = spec["capacity"], spec["obs_dim"], spec["action_dim"]
    chunk = random_transitions(10_000, obs_dim, action_dim)  # made before any baseline
    tracemalloc.start()
    rss0, _ = rss_bytes()
    replay = ReplayBuffer(capacity, obs_dim, action_dim)
    rss_allocated, _ = rss_bytes()
    traced_allocated, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del replay
    rss_before_fill, _ = rss_bytes()
    with stopwatch(1) as clock:
        replay = fill(ReplayBuffer(capacity, obs_dim, action_dim), chunk)
    rss_filled, rss_peak = rss_bytes()
    fields = {name: (list(a.shape), str(a.dtype), int(a.nbytes))
              for name, a in ((name, getattr(replay, name)) for name in REPLAY_FIELDS)}
    fields["transitions held"] = ([len(replay)], "", 0)
    return {"fields": fields, "rss_allocated": rss_allocated - rss0,
            "rss_filled": rss_filled - rss_before_fill, "rss_peak": rss_peak - rss_before_fill,
            "traced_allocated": traced_allocated, "fill_s": clock["seconds"],
            "fill_cpu_share": clock["cpu_share"],
            **traced_fill(min(capacity, TRACED_CAPACITY), obs_dim, action_dim, chunk)}


def traced_fill(capacity: int, obs_dim: int, action_dim: int, chunk: tuple[np.ndarray, ...]
                ) -> dict[str, int]:
    """tracemalloc of filling a ReplayBuffer of ``capacity`` through ``add`` (as
    :func:`measure_replay_memory` fills its own, past one wrap of the ring), beyond the buffer's
    arrays: what is left after the fill, and the most at once while filling (``add``'s
    temporaries)."""
    from dpgkit.replay import ReplayBuffer

    tracemalloc.start()
    replay = ReplayBuffer(capacity, obs_dim, action_dim)
    arrays, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    fill(replay, chunk)
    left, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"traced_capacity": capacity, "traced_left": left - arrays,
            "traced_peak": peak - arrays}


def memory_section(args: argparse.Namespace) -> str:
    """Section 3: measured memory of a full 1M-transition buffer against its fields' bytes."""
    r = speed_common.run_child({"kind": "memory", "capacity": args.buffer_size,
                                "obs_dim": HALFCHEETAH_OBS_DIM,
                                "action_dim": HALFCHEETAH_ACTION_DIM})
    intro = (f"## 3. Replay buffer memory, {args.buffer_size:,} HalfCheetah transitions\n\n"
             f"dpgkit `ReplayBuffer({args.buffer_size}, {HALFCHEETAH_OBS_DIM}, "
             f"{HALFCHEETAH_ACTION_DIM})`, filled through `add`, one transition at a time, from "
             f"10,000 random transitions strung into 1,000-step episodes and added again and "
             f"again (made before the baseline; `add`'s own temporaries count in the peaks), in "
             f"a fresh process. Each observation is stored once. tracemalloc is off during that "
             f"fill (tracing every temporary of every `add` makes it about 9 times slower): the "
             f"buffer whose fill it traces is smaller. MB = 10^6 bytes.\n\n")
    if "failed" in r:
        return intro + failed_cell(r) + "\n"
    fields = r["fields"]
    held = fields.pop("transitions held")[0][0]
    as_stored = sum(nbytes for _, _, nbytes in fields.values())
    # the raw bytes of N transitions, each field once: s, a, r as float32, the two flags as bytes
    raw = args.buffer_size * (4 * HALFCHEETAH_OBS_DIM + 4 * HALFCHEETAH_ACTION_DIM + 4 + 1 + 1)
    mb = lambda b: f"{b / 1e6:.1f}"  # noqa: E731
    rows = table_start("| what | shape | dtype | MB | / raw |")
    rows += [f"| field `{name}` | {tuple(shape)} | {dtype} | {mb(nbytes)} | |"
             for name, (shape, dtype, nbytes) in fields.items()]
    rows += [
        f"| raw: {args.buffer_size:,} x (s, a, r as float32, terminated, truncated as bytes) | | "
        f"| {mb(raw)} | 1.000 |",
        f"| **the buffer's arrays** | | | **{mb(as_stored)}** | **{as_stored / raw:.3f}** |",
        f"| measured: RSS / tracemalloc growth right after construction (lazy zeros) | | | "
        f"{mb(r['rss_allocated'])} / {mb(r['traced_allocated'])} | |",
        f"| measured: RSS growth after adding {args.buffer_size:,} transitions | | | "
        f"{mb(r['rss_filled'])} | {r['rss_filled'] / raw:.3f} |",
        f"| measured: peak RSS growth while filling (VmHWM) | | | {mb(r['rss_peak'])} | "
        f"{r['rss_peak'] / raw:.3f} |",
        f"| measured: tracemalloc beyond the arrays after filling / at the peak while filling "
        f"(`add`'s temporaries), in a buffer of {r['traced_capacity']:,} filled the same way | | "
        f"| {r['traced_left'] / 1e6:.3f} / {r['traced_peak'] / 1e6:.3f} | |",
        f"| transitions held after the fill (one row per episode end) | {held:,} | | | |",
    ]
    took = (f"\n\nThe fill of {args.buffer_size:,} took {r['fill_s']:.0f} s (cpu share "
            f"{r['fill_cpu_share']:.2f}): `ReplayBuffer.add` stores a single env's transitions "
            f"one at a time, a batch of one stream's rows too, some 20 numpy calls each.\n")
    return intro + "\n".join(rows) + took

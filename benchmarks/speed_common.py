"""What the sections of the speed benchmark (benchmarks/speed.py) share: the report's header,
running one measurement in a fresh process, timing a block, the table cells every section uses,
the machine in one line (the returns benchmark records it too),
and the random transitions sections 2 and 3 fill a replay buffer with."""

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM = 17, 6
NEVER = 10**12  # eval_every / total_env_steps that no benchmark reaches
# A timed run whose process had less than this share of the cores it ran with (CPU seconds of
# all its threads over wall seconds over its thread count; 1.0: they were its own) shared them
# with other work, so a time or ratio made with it is marked "shared" instead of clean. 0.9
# leaves room for the short serial stretches of a multi-thread run in which a thread waits
# without spinning (torch's OpenMP threads spin between close parallel regions: busy).
CLEAN_CPU_SHARE = 0.9
CPU_NOTE = (f"cpu share: the timed part's CPU seconds (all the process's threads) over its wall "
            f"seconds over its threads (1.0: it had its cores to itself); a ratio made with a "
            f"run under {CLEAN_CPU_SHARE} is marked 'shared: cpu' with the lowest share, not "
            f"clean. 1-min load: the load average at the run's start and end.")
BF16_SKIPPED = ("`bf16` skipped: no native bfloat16: needs AVX-512 BF16 or AMX; dpgkit's bf16 "
                "runs here through a slower path")


# ---------------------------------------------------------------------------------------------
# The header
# ---------------------------------------------------------------------------------------------

def _cpuinfo_field(name: str) -> str | None:
    """The first ``name : value`` line's value in /proc/cpuinfo (None where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines
                 if line.split(":", 1)[0].strip() == name), None)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown"


def vector_extension() -> str:
    """The widest matrix or vector extension the CPU reports: AMX, AVX-512 BF16, AVX-512, AVX2
    or "no AVX2" (also where /proc/cpuinfo is missing: a reading, not a promise)."""
    flags = (_cpuinfo_field("flags") or "").split()
    return next((name for name, flag in (("AMX", "amx_tile"), ("AVX-512 BF16", "avx512_bf16"),
                                         ("AVX-512", "avx512f"), ("AVX2", "avx2"))
                 if flag in flags), "no AVX2")


def machine() -> str:
    """The CPU's model name, logical CPU count and widest vector extension, in one line."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {vector_extension()}"


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_commit() -> str:
    """The repo's HEAD commit, marked ``+dirty`` when the work tree differs from it."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "dpgkit"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header() -> str:
    """Date, machine, and the versions the numbers were measured with."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        "# dpgkit speed benchmark",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs, {vector_extension()}); "
        f"load average at start: {load}",
        f"- python {platform.python_version()}, torch {package_version('torch')}, "
        f"stable-baselines3 {package_version('stable-baselines3')}, "
        f"gymnasium {package_version('gymnasium')}, mujoco {package_version('mujoco')}, "
        f"numpy {package_version('numpy')}",
        f"- dpgkit {package_version('dpgkit')} at commit {git_commit()}",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        "",
    ])


# ---------------------------------------------------------------------------------------------
# Running one measurement in a fresh process
# ---------------------------------------------------------------------------------------------

def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``speed.py --one SPEC`` in a fresh interpreter and return the JSON line it prints, or,
    where the child fails, ``{"failed": the last line of its error}`` (its stderr is logged).

    The thread count is also given to OpenMP/BLAS through the environment, so numpy and torch
    both see it from the start.
    """
    threads = str(spec.get("threads", 1))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads}
    command = [sys.executable, str(Path(__file__).resolve().with_name("speed.py")), "--one",
               json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    log(f"measurement {spec} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return {"failed": errors[-1] if errors else f"exit {done.returncode} without a result"}


@contextlib.contextmanager
def stopwatch(threads: int) -> Iterator[dict[str, float]]:
    """Time the block: the dict it yields gets, at the block's end, ``seconds`` (wall),
    ``cpu_share`` (this process's CPU seconds over wall seconds over ``threads``: 1.0 = it had
    its cores to itself) and the 1-minute load average at the start and end, ``load_start`` and
    ``load_end``."""
    record = {"load_start": os.getloadavg()[0]}
    cpu, wall = time.process_time(), time.perf_counter()
    yield record
    seconds = time.perf_counter() - wall
    record.update(seconds=seconds, cpu_share=(time.process_time() - cpu) / seconds / threads,
                  load_end=os.getloadavg()[0])


def mean_seconds(fn: Callable[[], Any], n: int) -> float:
    """Wall seconds of one call of ``fn``, the mean of ``n`` calls in a row."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def shared_mark(records: list[dict[str, Any]]) -> str:
    """' (shared: cpu 0.62)' (the lowest share) where a run of ``records`` had less than
    ``CLEAN_CPU_SHARE`` of its cores, else ''."""
    low = min(r["cpu_share"] for r in records)
    return f" (shared: cpu {low:.2f})" if low < CLEAN_CPU_SHARE else ""


def load_cell(record: dict[str, Any]) -> str:
    """A run's 1-minute load average at its start and end, 'start→end'."""
    return f"{record['load_start']:.2f}→{record['load_end']:.2f}"


def table_start(head: str) -> list[str]:
    """A markdown table's first two rows: ``head`` and the rule under its columns."""
    return [head, "|" + "---|" * (head.count("|") - 1)]


def failed_cell(record: dict[str, Any]) -> str:
    """'failed: ERROR' for a failed measurement, fit for a table cell."""
    return f"failed: {record['failed'][:200]}".replace("|", "\\|")


def failed_row(cells: list[str], record: dict[str, Any], columns: int) -> str:
    """A table row of ``columns`` for a failed measurement: ``cells``, its error, blanks."""
    cells = [*cells, failed_cell(record)]
    return "| " + " | ".join(cells + [""] * (columns - len(cells))) + " |"


def bf16_skip_reason() -> str:
    """Why the bf16 variants are not timed here, or '' where they are: they need oneDNN's native
    bfloat16 kernels (:func:`dpgkit.torchops.native_bf16`)."""
    from dpgkit.torchops import native_bf16

    return "" if native_bf16() else BF16_SKIPPED


def log(message: str) -> None:
    print(f"[speed] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Random transitions to fill a replay buffer with (sections 2 and 3)
# ---------------------------------------------------------------------------------------------

def random_transitions(n: int, obs_dim: int, action_dim: int, seed: int = 0,
                       episode_length: int = 1000) -> tuple[np.ndarray, ...]:
    """n transitions (obs, action, reward, next_obs, terminated, truncated) for ``add``: random
    observations strung into episodes of ``episode_length`` steps (each s' is the next s),
    every one truncated at its end, as HalfCheetah's are."""
    rng = np.random.default_rng(seed)
    episodes = -(-n // episode_length)
    walk = rng.standard_normal((episodes, episode_length + 1, obs_dim), dtype=np.float32)
    obs = walk[:, :-1].reshape(-1, obs_dim)[:n]
    next_obs = walk[:, 1:].reshape(-1, obs_dim)[:n]
    truncated = (np.arange(n) % episode_length) == episode_length - 1
    return (obs, rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
            rng.standard_normal(n, dtype=np.float32), next_obs, np.zeros(n, dtype=bool),
            truncated)


def fill(replay: Any, chunk: tuple[np.ndarray, ...]) -> Any:
    """Add ``capacity`` transitions to ``replay`` through ``add``, ``chunk`` again and again (the
    same chunk each time, so filling allocates nothing but ``add``'s own temporaries). Each
    episode end costs a row, so the buffer then holds a little less than ``capacity``."""
    added = 0
    while added < replay.capacity:
        n = min(len(chunk[2]), replay.capacity - added)
        for transition in zip(*(field[:n] for field in chunk), strict=True):
            replay.add(*transition)  # one env: one transition at a time, as in training
        added += n
    return replay

"""torch's thread count: the share of this machine's cores a run takes.

More threads than free cores is the one setting that slows a run many times over without an
error: a parallel matrix product waits for its slowest thread, and a thread whose core is busy
waits for the scheduler. Measured on a 2-core AMD EPYC (AVX2): TD3 on Pendulum-v1 ran at 10 env
steps/s on 2 threads while another training used the second core, and at 140 on 1. dpgkit cannot
see what other programs will do with the cores, but it can see how many there are: asking for
more threads than that gets a warning.
"""

import os
import warnings

import torch

from dpgkit.errors import DpgkitWarning


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says; else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def too_many_threads(threads: int, processes: int = 1) -> str | None:
    """A warning's text when ``processes`` runs of ``threads`` torch threads each (2 or more)
    want more threads than this machine has cores; else None. Single-threaded runs beyond the
    cores only share them, each slower in proportion, as any program does: no warning."""
    cores = usable_cores()
    if threads == 1 or threads * processes <= cores:
        return None
    if processes == 1:
        wanted, fix = f"{threads} threads", f"--torch_threads {cores}"
    else:
        wanted = f"{processes} runs x {threads} threads"
        fix = f"--workers {max(1, cores // threads)}" + (
            f" or --torch_threads {cores // processes}" if cores >= processes else "")
    return (f"torch_threads: {wanted} on {cores} core{'s' if cores > 1 else ''}: threads that "
            f"wait for busy cores slow a run many times over; give {fix}")


def warn_if_too_many_threads(threads: int, processes: int = 1) -> None:
    """Warn with :func:`too_many_threads`'s text, if it has one."""
    message = too_many_threads(threads, processes)
    if message:
        warnings.warn(message, DpgkitWarning, stacklevel=3)


def use_threads(threads: int) -> None:
    """torch.set_num_threads(threads), with a warning if this machine has fewer cores."""
    torch.set_num_threads(threads)
    warn_if_too_many_threads(threads)

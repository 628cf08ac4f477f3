"""The arithmetic of section 2 of the speed benchmark (benchmarks/speed.py): the matrix
products of one dpgkit DDPG update, their FLOPs, and the rate this machine multiplies exactly
those products at (section 2 itself: benchmarks/speed_update.py). Section td7
(benchmarks/speed_td7.py) counts TD7's products with the same forward and backward helpers."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from speed_common import table_start

# ---------------------------------------------------------------------------------------------
# 2. The update alone: FLOPs per update, and this machine's matmul rate
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gemm:
    """One matrix product (M x K) @ (K x N) of an update, as autograd runs it for a Linear.

    ``kind``: ``fwd`` is x @ W^T (x: B x in, W: out x in); ``dx`` (input gradient) is
    g @ W (g: B x out); ``dw`` (weight gradient) is g^T @ x. Each costs 2 * B * in * out FLOPs.
    """

    what: str
    kind: str
    batch: int
    n_in: int
    n_out: int
    hidden_to_hidden: bool = False  # neither a network's first layer nor its last

    @property
    def flops(self) -> int:
        return 2 * self.batch * self.n_in * self.n_out


def linear_shapes(n_in: int, hidden: tuple[int, ...], n_out: int) -> list[tuple[int, int]]:
    """(in, out) of each Linear of an MLP n_in -> hidden... -> n_out."""
    sizes = (n_in, *hidden, n_out)
    return list(zip(sizes[:-1], sizes[1:], strict=True))


def forward_gemms(what: str, layers: list[tuple[int, int]], batch: int) -> list[Gemm]:
    """The forward products of a network of ``layers`` ((in, out) of each Linear, in order) at
    ``batch``: one x @ W^T per layer."""
    return [Gemm(what, "fwd", batch, i, o, 0 < index < len(layers) - 1)
            for index, (i, o) in enumerate(layers)]


def backward_gemms(what: str, layers: list[tuple[int, int]], batch: int, weights: bool,
                   first_input: bool) -> list[Gemm]:
    """The backward products of a network of ``layers`` at ``batch``, last layer first: a weight
    gradient per layer where ``weights`` (its parameters train), an input gradient per layer but
    the first, and the first's too where ``first_input`` (something upstream needs it)."""
    gemms = []
    for index, (i, o) in reversed(list(enumerate(layers))):
        middle = 0 < index < len(layers) - 1
        if weights:
            gemms.append(Gemm(what, "dw", batch, i, o, middle))
        if index > 0 or first_input:
            gemms.append(Gemm(what, "dx", batch, i, o, middle))
    return gemms


def ddpg_update_gemms(obs_dim: int, action_dim: int, actor_hidden: tuple[int, ...],
                      critic_hidden: tuple[int, ...], batch: int) -> list[Gemm]:
    """Every matrix product of one dpgkit DDPG update (``DDPGAgent.update``), in order.

    Networks: actor obs -> hidden -> action (tanh); critic concat(s, a) -> hidden -> 1 (dpgkit's
    ``critic_action_layer=0``, the one that matches SB3). For a Linear of in x out at batch B a
    forward is one product of 2*B*in*out FLOPs; its backward is a weight gradient (2*B*in*out)
    and, unless nothing upstream needs it, an input gradient (2*B*in*out), so about 2x forward.
    The passes of one update:

    1. target actor forward on s'                       -> a' = mu'(s')      (no grad)
    2. target critic forward on (s', a')                -> y                  (no grad)
    3. critic forward on (s, a)
    4. critic backward of the critic loss: weight gradients of every layer; input gradients of
       every layer but the first (s and a are data, nothing needs their gradient)
    5. actor forward on s                               -> mu(s)
    6. critic forward on (s, mu(s))
    7. critic backward of the actor loss: the critic's parameters are frozen
       (``requires_grad_(False)``), so no weight gradients, but input gradients through every
       layer *including the first*, since the action input mu(s) needs its gradient (autograd
       computes the full (B x out) @ (out x (obs+action)) product and then splits s from a)
    8. actor backward: weight gradients of every layer; input gradients of all but the first

    Assumptions: only matrix products are counted. Bias adds, ReLU/tanh, concat, the losses, the
    TD target, Adam (about 10 elementwise FLOPs per parameter) and the soft target updates are
    elementwise and left out: they cost little arithmetic but many small, memory-bound kernels,
    which is part of what the measured fraction shows.
    """
    actor = linear_shapes(obs_dim, actor_hidden, action_dim)
    critic = linear_shapes(obs_dim + action_dim, critic_hidden, 1)

    fwd, bwd = forward_gemms, backward_gemms
    return [
        *fwd("1 target actor fwd (s')", actor, batch),
        *fwd("2 target critic fwd (s', a')", critic, batch),
        *fwd("3 critic fwd (s, a)", critic, batch),
        *bwd("4 critic bwd (critic loss)", critic, batch, weights=True, first_input=False),
        *fwd("5 actor fwd (s)", actor, batch),
        *fwd("6 critic fwd (s, mu(s))", critic, batch),
        *bwd("7 critic bwd to its action input (frozen)", critic, batch, weights=False,
             first_input=True),
        *bwd("8 actor bwd", actor, batch, weights=True, first_input=False),
    ]


def ddpg_update_flops(obs_dim: int, action_dim: int, actor_hidden: tuple[int, ...],
                      critic_hidden: tuple[int, ...], batch: int) -> int:
    """Matmul FLOPs of one dpgkit DDPG update: the sum over :func:`ddpg_update_gemms`
    (see there for the passes and the assumptions)."""
    return sum(g.flops for g in ddpg_update_gemms(obs_dim, action_dim, actor_hidden,
                                                  critic_hidden, batch))


def gemm_operands(gemm: Gemm, dtype: Any = None) -> tuple[Any, Any]:
    """Random operands (fp32 unless ``dtype``) laid out as autograd's Linear uses them for
    ``gemm.kind``."""
    import torch

    x = torch.randn(gemm.batch, gemm.n_in, dtype=dtype)
    w = torch.randn(gemm.n_out, gemm.n_in, dtype=dtype)
    g = torch.randn(gemm.batch, gemm.n_out, dtype=dtype)
    return {"fwd": (x, w.t()), "dx": (g, w), "dw": (g.t(), x)}[gemm.kind]


def best_product_seconds(a: Any, b: Any) -> float:
    """Seconds of the fastest way torch computes a @ b: as it is, or as (b^T @ a^T)^T (the same
    product, with the operands' layouts swapped, which some kernels run much faster), each into
    a preallocated output."""
    import torch

    out = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype)
    out_t = torch.empty(b.shape[1], a.shape[0], dtype=a.dtype)
    return min(seconds_per_call(lambda: torch.mm(a, b, out=out)),
               seconds_per_call(lambda: torch.mm(b.t(), a.t(), out=out_t)))


def seconds_per_call(fn: Callable[[], Any], min_seconds: float = 0.05, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time of ``fn()``, each round at least ``min_seconds``."""
    for _ in range(3):
        fn()
    calls = 1
    while True:  # find how many calls fill min_seconds
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= min_seconds:
            break
        calls *= 2
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def matmul_mix_rate(gemms: list[Gemm], bf16: bool = False) -> tuple[float, float]:
    """(seconds, GFLOP/s) of running every product of ``gemms`` once with ``torch.mm``.

    Each distinct (kind, B, in, out) is timed alone (into a preallocated output, in whichever of
    its two layouts torch runs faster: :func:`best_product_seconds`) and weighted by how often the
    update performs it, so the rate is the machine's best fp32 matmul rate for this update's exact
    mix of shapes, in the current thread count. With ``bf16``, the hidden-to-hidden products are
    timed in bfloat16, as dpgkit's ``bf16`` mode runs them.
    """
    import torch

    counts: dict[tuple[str, int, int, int, bool], int] = {}
    for g in gemms:
        key = (g.kind, g.batch, g.n_in, g.n_out, bf16 and g.hidden_to_hidden)
        counts[key] = counts.get(key, 0) + 1
    seconds = 0.0
    for (kind, batch, n_in, n_out, low), count in counts.items():
        operands = gemm_operands(Gemm("", kind, batch, n_in, n_out),
                                 torch.bfloat16 if low else torch.float32)
        seconds += count * best_product_seconds(*operands)
    return seconds, sum(g.flops for g in gemms) / seconds / 1e9


def square_matmul_rate(n: int = 1024) -> float:
    """GFLOP/s of one large (n x n) @ (n x n) fp32 product: the machine's rate when shapes are
    no obstacle, for reference."""
    import torch

    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    return 2 * n**3 / seconds_per_call(lambda: torch.mm(a, b, out=out)) / 1e9


def gemm_table(gemms: list[Gemm]) -> str:
    """The products of one update, one row per pass, with their FLOPs."""
    rows = table_start("| pass | products (kind: B x in -> out) | MFLOP |")
    for what in dict.fromkeys(g.what for g in gemms):
        mine = [g for g in gemms if g.what == what]
        shapes = ", ".join(f"{g.kind}: {g.batch}x{g.n_in}->{g.n_out}" for g in mine)
        rows.append(f"| {what} | {shapes} | {sum(g.flops for g in mine) / 1e6:.2f} |")
    rows.append(f"| **total** | {len(gemms)} products | "
                f"**{sum(g.flops for g in gemms) / 1e6:.2f}** |")
    return "\n".join(rows) + "\n"

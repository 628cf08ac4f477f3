"""Every private torch operator dpgkit calls, in one place, each with a probe and a fallback.

dpgkit pins torch 2.13.0, and every entry below was checked against it. A private operator can
still be missing or fail: another torch build (a user who installs a different version), or a
CPU where oneDNN lacks a kernel (bfloat16 products need AVX-512 BF16 or AMX; on an AVX2-only CPU
``torch.ops.mkldnn._linear_pointwise`` in bfloat16 raises "could not create a primitive
descriptor"). So each one is probed once, by calling it on tiny tensors, and where the probe
fails dpgkit takes the fallback written beside it: the same arithmetic through public torch,
slower. Nothing here ever raises mid-run.

=====================  ==============================================  =========================
name                   what dpgkit calls (torch 2.13.0)                fallback
=====================  ==============================================  =========================
``relu_backward``      ``torch.ops.aten.threshold_backward.grad_input`` ``grad.mul_(x > 0)``
``tanh_backward``      ``torch.ops.aten.tanh_backward``                ``grad * (1 - y * y)``
``linear_relu_bf16``   ``torch.ops.mkldnn._linear_pointwise`` (relu)   ``addmm`` in bfloat16,
                       and ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` then ``relu_``
``fused_adam``         ``torch._fused_adam_``; ``Adam(fused=True)``    ``Adam.step()`` (for-loop
                                                                       or foreach Adam)
``optimizer_hooks``    ``Optimizer._optimizer_step_pre_hooks`` and     ``optimizer.step()``
                       ``_optimizer_step_post_hooks`` (read, to step
                       the fused kernel only when no hook is set)
``foreach_lerp``       ``torch._foreach_lerp_``                        ``lerp_`` per tensor
=====================  ==============================================  =========================

To see dpgkit run without some of them (to test a fallback on a machine that has them), set
``DPGKIT_NO_PRIVATE_OPS`` to a comma-separated list of names, or ``all``; tests use
:func:`disabled`. :func:`report` says which are in use, for ``dpgkit info``-style output and
the speed benchmark.
"""

import contextlib
import os
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

TORCH_CHECKED = "2.13.0"


def _probe_relu_backward() -> None:
    grad, x = torch.ones(2), torch.tensor([1.0, -1.0])
    torch.ops.aten.threshold_backward.grad_input(grad, x, 0.0, grad_input=grad)
    assert grad.tolist() == [1.0, 0.0]


def _probe_tanh_backward() -> None:
    assert torch.ops.aten.tanh_backward(torch.ones(1), torch.zeros(1)).item() == 1.0


def _probe_linear_relu_bf16() -> None:
    # oneDNN's own check first: on a CPU without AVX-512 BF16 or AMX the call below raises
    if not (torch.backends.mkldnn.is_available()
            and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        raise RuntimeError("oneDNN has no native bfloat16 kernels on this CPU")
    x = torch.ones(2, 8, dtype=torch.bfloat16)
    out = torch.ops.mkldnn._linear_pointwise(x, torch.ones(4, 8, dtype=torch.bfloat16),
                                             -torch.ones(4, dtype=torch.bfloat16) * 9, "relu",
                                             [], "")
    assert out.shape == (2, 4) and out.sum().item() == 0.0  # relu(8 - 9) = 0


def _probe_fused_adam() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    torch.optim.Adam([p], lr=0.1, fused=True).step()
    steps = torch.zeros(1)
    torch._fused_adam_([p.detach()], [p.grad], [torch.zeros(2)], [torch.zeros(2)], [],
                       [steps], amsgrad=False, lr=0.1, beta1=0.9, beta2=0.999,
                       weight_decay=0.0, eps=1e-8, maximize=False)


def _probe_optimizer_hooks() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    assert len(optimizer._optimizer_step_pre_hooks) == 0
    assert len(optimizer._optimizer_step_post_hooks) == 0


def _probe_foreach_lerp() -> None:
    a, b = [torch.zeros(2)], [torch.ones(2)]
    torch._foreach_lerp_(a, b, 0.5)
    assert a[0].tolist() == [0.5, 0.5]


PROBES: dict[str, Callable[[], None]] = {
    "relu_backward": _probe_relu_backward,
    "tanh_backward": _probe_tanh_backward,
    "linear_relu_bf16": _probe_linear_relu_bf16,
    "fused_adam": _probe_fused_adam,
    "optimizer_hooks": _probe_optimizer_hooks,
    "foreach_lerp": _probe_foreach_lerp,
}

_answers: dict[str, bool] = {}  # name -> whether dpgkit uses it (probed once, then cached)
_forced_off: set[str] = set()


def _switched_off() -> set[str]:
    names = {n.strip() for n in os.environ.get("DPGKIT_NO_PRIVATE_OPS", "").split(",")
             if n.strip()}
    return set(PROBES) if "all" in names else names | _forced_off


def _works(name: str) -> bool:
    try:
        PROBES[name]()
        return True
    except Exception:  # noqa: BLE001 -- any failure of a private operator means: fall back
        return False


def has(name: str) -> bool:
    """Whether dpgkit calls the private operator ``name`` (a key of :data:`PROBES`) here: it
    works (probed once) and is not switched off."""
    answer = _answers.get(name)
    if answer is None:
        answer = _answers[name] = name not in _switched_off() and _works(name)
    return answer


@contextlib.contextmanager
def disabled(*names: str) -> Iterator[None]:
    """Within the block, ``has`` answers False for ``names`` (to test the fallbacks)."""
    unknown = set(names) - set(PROBES)
    if unknown:
        raise KeyError(f"no private operator named {', '.join(sorted(unknown))}")
    before = set(_forced_off)
    _forced_off.update(names)
    _answers.clear()
    try:
        yield
    finally:
        _forced_off.clear()
        _forced_off.update(before)
        _answers.clear()


def report() -> dict[str, bool]:
    """Each private operator and whether dpgkit uses it here (False: its fallback)."""
    return {name: has(name) for name in PROBES}


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively through oneDNN (AVX-512 BF16 or AMX)."""
    return has("linear_relu_bf16")


# --- the operators, each with its fallback --------------------------------------------------

def relu_backward_(grad: Tensor, x: Tensor) -> Tensor:
    """grad <- grad * (x > 0), in place: the backward of the ReLU that made ``x``."""
    if has("relu_backward"):
        return torch.ops.aten.threshold_backward.grad_input(grad, x, 0.0, grad_input=grad)
    return grad.mul_(x > 0)


def tanh_backward(grad: Tensor, y: Tensor) -> Tensor:
    """grad * (1 - y^2): the backward of y = tanh(z)."""
    if has("tanh_backward"):
        return torch.ops.aten.tanh_backward(grad, y)
    return grad * (1 - y * y)


def linear_relu(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """relu(x W^T + b) with the dtype of its operands: oneDNN's fused kernel where it has one
    for them (bfloat16 on AVX-512 BF16 or AMX), else ``addmm`` then ``relu_``, which every CPU
    runs (bfloat16 through torch's own, slower, kernels)."""
    if x.dtype == torch.bfloat16 and has("linear_relu_bf16"):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu", [], "")
    return torch.addmm(bias, x, weight.t()).relu_()


def fused_adam_(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step: Tensor,
                *, lr: float, beta1: float, beta2: float, weight_decay: float,
                eps: float) -> None:
    """One Adam step of one flat tensor in one kernel (callers check ``has("fused_adam")``)."""
    torch._fused_adam_([param], [grad], [exp_avg], [exp_avg_sq], [], [step], amsgrad=False,
                       lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps,
                       maximize=False)


def has_step_hooks(optimizer: torch.optim.Optimizer) -> bool:
    """Whether a step hook is registered on ``optimizer`` (True when torch does not say)."""
    if not has("optimizer_hooks"):
        return True
    return bool(optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks)


def lerp_(targets: list[Tensor], sources: list[Tensor], weight: float) -> None:
    """targets[i] <- targets[i] + weight (sources[i] - targets[i]), for every i."""
    if has("foreach_lerp"):
        torch._foreach_lerp_(targets, sources, weight)
        return
    for target, source in zip(targets, sources, strict=True):
        target.lerp_(source, weight)

"""The online networks, their targets, their gradients and Adam's moments, each laid out flat.

The hand-written update (:mod:`dpgkit.fastpath`) moves every parameter of the online networks
into one flat tensor and makes each a view of its slice, and does the same for the target
networks, the gradients and every Adam moment. The elementwise work is then a few large kernels
instead of many small ones: an Adam step is one fused kernel over a network's whole slice (Adam
is elementwise, so this is the same arithmetic as per tensor), and the soft update of all targets
is one lerp. The optimisers stay torch's own objects with per-parameter state (views), so
checkpoints are unchanged.
"""

import torch
from torch import Tensor, nn

from dpgkit import torchops


def flatten(modules: list[nn.Module], gradients: bool) -> tuple[Tensor, Tensor | None]:
    """Move every parameter of ``modules``, in order, into one new flat tensor and make each a
    view of its slice; with ``gradients``, give each a ``.grad`` that is a view of a second flat
    tensor. Returns (flat parameters, flat gradients or None)."""
    params = [p for module in modules for p in module.parameters()]
    flat = torch.empty(sum(p.numel() for p in params))
    grads = torch.zeros_like(flat) if gradients else None
    offset = 0
    for p in params:
        end = offset + p.numel()
        view = flat[offset:end].view_as(p)
        view.copy_(p.detach())
        p.data = view
        if grads is not None:
            p.grad = grads[offset:end].view_as(p)
        offset = end
    return flat, grads


class FlatAdam:
    """Steps a fused ``torch.optim.Adam`` whose parameters are one contiguous run of a flat
    tensor (see :func:`flatten`) as one tensor: one ``torch._fused_adam_`` kernel instead of one
    per parameter (where this torch has it: :mod:`dpgkit.torchops`), and none of
    ``Optimizer.step``'s per-call Python. The optimiser's own state (per parameter, as torch
    keeps it and checkpoints save it) is made of views of flat moments and step counts, so both
    ways of stepping read and write the same numbers. Any other optimiser (SGD, or an Adam this
    cannot step) is stepped with its own ``step()``."""

    def __init__(self, optimizer: torch.optim.Optimizer, flat: Tensor, grads: Tensor) -> None:
        self.optimizer = optimizer
        group = optimizer.param_groups[0]
        self.params: list[Tensor] = group["params"]
        span = self._span(flat)
        self.fused = span is not None and torchops.has("fused_adam") and (
            isinstance(optimizer, torch.optim.Adam) and group["fused"]
            and len(optimizer.param_groups) == 1
            and not any(group[flag] for flag in ("amsgrad", "maximize", "capturable",
                                                 "differentiable", "decoupled_weight_decay")))
        if self.fused:
            start, end = span
            self.param, self.grad = flat[start:end], grads[start:end]
            self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.param), torch.zeros_like(
                self.param)
            self.steps = torch.zeros(len(self.params))
            self.state: list[dict[str, Tensor]] = []

    def _span(self, flat: Tensor) -> tuple[int, int] | None:
        """(start, end) of the parameters in ``flat`` if they are its consecutive slices."""
        base, size = flat.data_ptr(), flat.element_size()
        start = end = (self.params[0].data_ptr() - base) // size
        for p in self.params:
            if p.untyped_storage().data_ptr() != flat.untyped_storage().data_ptr() or (
                    p.data_ptr() - base) // size != end:
                return None
            end += p.numel()
        return start, end

    def _bind(self) -> None:
        """Make the optimiser's per-parameter state views of the flat moments, keeping any
        values it holds (after a checkpoint is loaded, say)."""
        offset = 0
        state = self.optimizer.state
        for i, p in enumerate(self.params):
            end = offset + p.numel()
            slots = {"step": self.steps[i], "exp_avg": self.exp_avg[offset:end].view_as(p),
                     "exp_avg_sq": self.exp_avg_sq[offset:end].view_as(p)}
            for name, view in slots.items():
                view.copy_(state[p][name] if name in state[p] else torch.zeros(()))
            state[p] = slots
            offset = end
        self.state = [state[p] for p in self.params]

    def step(self) -> None:
        """One optimizer step on the gradients in the parameters' ``.grad``."""
        optimizer = self.optimizer
        if not self.fused or torchops.has_step_hooks(optimizer):
            optimizer.step()
            return
        if not self.state or optimizer.state.get(self.params[0]) is not self.state[0]:
            self._bind()  # first step, or the optimiser's state was replaced (a load)
        group = optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        self.steps.add_(1)
        torchops.fused_adam_(self.param, self.grad, self.exp_avg, self.exp_avg_sq,
                             self.steps[0], lr=group["lr"], beta1=beta1, beta2=beta2,
                             weight_decay=group["weight_decay"], eps=group["eps"])

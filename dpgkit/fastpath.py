"""The DDPG/TD3 update computed by hand, without autograd: the fast path.

:class:`~dpgkit.agent.DDPGAgent` states each step with the named equations and lets autograd
differentiate them; that reference path is the one to read. On a CPU, though, an update at
256-256 / batch 256 spends as much time in autograd's bookkeeping, temporary tensors, per-tensor
optimizer kernels and the critic-weight gradients it does not need as in its matrix products.
This module computes the same update with the chain rule written out for ReLU MLPs:

    critic step: dL/dq_i = 2 w_i (q_i - y_i) / B  (w_i = 1 unless prioritized), then back
                 through the critic's layers: dW = d^T x, db = sum_i d_i, d_in = d W, times the
                 ReLU mask (x > 0) of the layer below
    actor step:  dL/dq_i = -1 / B back through the critic to its action input only (no critic
                 weight gradients: the critic is held fixed), dL/da = that; dL/dz = dL/da (1 - a^2)
                 through tanh, then back through the actor's layers as above

and it lays the networks out so that the elementwise work is a few large kernels instead of many
small ones: every parameter of the online networks is a view into one flat tensor, and so is
every parameter of the target networks, every gradient and every Adam moment. An Adam step is
then one fused kernel over a network's whole slice (Adam is elementwise, so this is the same
arithmetic as per tensor), and the soft update of all targets is one lerp.

The optimisers stay torch's own objects with per-parameter state (views), so checkpoints are
unchanged. ``tests/test_fastpath.py`` checks that both paths give the same parameters, step after
step. Networks with batch normalisation always take the reference path.
"""

import warnings

import torch
from torch import Tensor, nn

from dpgkit import torchops
from dpgkit.equations import actor_loss, critic_loss
from dpgkit.errors import DpgkitWarning
from dpgkit.networks import Actor, Critic

NARROW = 8  # x W^T for an output this narrow runs faster as (W x^T)^T in torch's CPU kernels


def _linears(*modules: nn.Module) -> list[nn.Linear]:
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


def supports(*networks: nn.Module) -> bool:
    """Whether the fast path can run these networks: Linear + ReLU only (no batch norm)."""
    return not any(isinstance(m, nn.BatchNorm1d) for net in networks for m in net.modules())


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


class MLP:
    """The layers of an actor or critic as a plain list: a forward pass that keeps each layer's
    input and a backward pass that writes the parameter gradients into their ``.grad``. Called,
    it gives what the module gives: mu(s) for an actor, Q(s, a) of shape (B,) for a critic.

    The operands of each layer's forward (W^T, or W and b as a column) are views made once: the
    parameters are views of a flat tensor that is only ever written in place (:func:`flatten`),
    so these views stay current.

    With ``bf16``, the hidden-to-hidden layers (neither the first nor the last: the large
    products) run in bfloat16, which CPUs with AMX or AVX-512 BF16 multiply several times faster
    (through oneDNN; other CPUs run the same bfloat16 products through torch's own kernels,
    slower: :func:`dpgkit.torchops.linear_relu`): each forward takes a bfloat16 copy of their
    weights and of their input, and the backward works from those copies. Parameters, gradients
    and Adam stay float32 (a gradient is rounded to bfloat16 precision, about 3 significant
    digits, before it is stored); the first and last layers, and so Q and mu, stay float32.
    """

    def __init__(self, network: Actor | Critic, action_dim: int, bf16: bool = False) -> None:
        self.critic = isinstance(network, Critic)
        if self.critic:
            self.layers = _linears(network.state_net, network.joint_net)
            self.action_at = len(_linears(network.state_net))  # the layer whose input has a
        else:
            self.layers, self.action_at = _linears(network.net), -1
        self.action_dim = action_dim
        self.last = len(self.layers) - 1
        self.low = list(range(1, self.last)) if bf16 else []  # the layers run in bfloat16
        # forward: x W^T + b; an output this narrow runs faster as (W x^T + b)^T in torch's CPU
        # kernels, so those layers keep W and b as a column instead
        self.forward_operands = [
            (layer.weight, layer.bias.unsqueeze(1), "narrow") if layer.out_features <= NARROW
            else (layer.weight.t(), layer.bias, "wide") for layer in self.layers]
        self.weights = [layer.weight for layer in self.layers]  # as the last forward used them
        self.features = self.layers[max(self.action_at, 0)].in_features - action_dim

    def __call__(self, obs: Tensor, action: Tensor | None = None) -> Tensor:
        out = self.forward(obs, action)[0]
        return out.squeeze(1) if self.critic else torch.tanh(out)

    def forward(self, x: Tensor, action: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """The network's output before any final activation, (B, out), and each layer's input."""
        operands = self.forward_operands
        if self.low:  # this forward's bfloat16 copies, which the backward will use too
            operands = list(operands)
            for i in self.low:
                layer = self.layers[i]
                self.weights[i] = layer.weight.to(torch.bfloat16)
                operands[i] = (self.weights[i], layer.bias.to(torch.bfloat16), "bf16")
        inputs = []
        for i, (weight, bias, kind) in enumerate(operands):
            if x.dtype != weight.dtype:
                x = x.to(weight.dtype)
            if i == self.action_at:
                x = torch.cat((x, action.to(x.dtype)), 1)
            inputs.append(x)
            if kind == "bf16":  # relu(x W^T + b), one oneDNN kernel where the CPU has one
                x = torchops.linear_relu(x, weight, bias)
                continue
            x = (torch.addmm(bias, weight, x.t()).t() if kind == "narrow"
                 else torch.addmm(bias, x, weight))
            if i < self.last:
                x.relu_()
        return x, inputs

    def backward(self, inputs: list[Tensor], grad_out: Tensor, weights: bool = True
                 ) -> Tensor | None:
        """Back from dL/d(output), (B, out), after the forward that gave ``inputs``. With
        ``weights``: every parameter's gradient, written into its ``.grad``. Without (a critic
        held fixed): only dL/da, returned."""
        grad = grad_out
        for i in range(self.last, -1, -1):
            layer, x, weight = self.layers[i], inputs[i], self.weights[i]
            if grad.dtype != x.dtype:
                grad = grad.to(x.dtype)
            if weights and x.dtype == torch.float32:
                torch.mm(grad.t(), x, out=layer.weight.grad)
                torch.sum(grad, 0, out=layer.bias.grad)
            elif weights:  # a bfloat16 layer: its gradient, rounded, into the float32 .grad
                layer.weight.grad.copy_(torch.mm(grad.t(), x))
                torch.sum(grad, 0, dtype=torch.float32, out=layer.bias.grad)
            if i == self.action_at:  # the input is (features, a): d_in splits the same way
                if not weights:
                    return torch.mm(grad, weight[:, self.features:]).float()
                x, weight = x[:, :self.features], weight[:, :self.features]
            if i == 0:
                return None
            # d_in = d W, then through the ReLU that made this layer's input: zero where x <= 0
            grad = torch.mm(grad, weight)
            torchops.relu_backward_(grad, x)
        return None


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


class FastUpdate:
    """The agent's networks laid out flat, their forward passes without ``nn.Module``, the
    critic and actor gradient steps by hand and the soft update as one lerp (see the module
    docstring).

    Args:
        actor, critics: the online networks (one critic for DDPG, two for TD3).
        actor_target, critic_targets: their target copies, in the same order.
        action_dim: size of the action.
        bf16: run the hidden-to-hidden products in bfloat16 (see :class:`MLP`).
    """

    def __init__(self, actor: Actor, critics: list[Critic], actor_target: Actor,
                 critic_targets: list[Critic], action_dim: int, bf16: bool = False) -> None:
        self.online, self.grads = flatten([actor, *critics], gradients=True)
        self.targets, _ = flatten([actor_target, *critic_targets], gradients=False)
        if bf16 and not torchops.native_bf16():
            warnings.warn("bf16: this CPU has no native bfloat16 products (AVX-512 BF16 or "
                          "AMX), so they run through torch's slower kernels: the same bfloat16 "
                          "arithmetic, slower than float32 here; for speed, leave bf16 off",
                          DpgkitWarning, stacklevel=3)
        self.actor = MLP(actor, action_dim, bf16)
        self.critics = [MLP(critic, action_dim, bf16) for critic in critics]
        self.actor_target = MLP(actor_target, action_dim, bf16)
        self.critic_target, *rest = [MLP(target, action_dim, bf16) for target in critic_targets]
        self.critic2_target = rest[0] if rest else None
        self._steppers: dict[int, FlatAdam] = {}

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``, as one fused kernel where it can be (:class:`FlatAdam`)."""
        stepper = self._steppers.get(id(optimizer))
        if stepper is None or stepper.optimizer is not optimizer:
            stepper = self._steppers[id(optimizer)] = FlatAdam(optimizer, self.online,
                                                               self.grads)
        stepper.step()

    def critic_step(self, obs: Tensor, action: Tensor, y: Tensor, weights: Tensor | None,
                    optimizer: torch.optim.Optimizer) -> tuple[list[Tensor], Tensor]:
        """One optimizer step on sum_k critic_loss(Q_k(s, a), y); returns each critic's
        Q(s, a) (B,) and the summed loss."""
        batch = y.shape[0]
        scale = 2.0 / batch if weights is None else weights * (2.0 / batch)
        qs, losses = [], []
        with torch.no_grad():
            for critic in self.critics:
                q, inputs = critic.forward(obs, action)
                q = q.squeeze(1)
                critic.backward(inputs, ((q - y) * scale).unsqueeze(1))
                losses.append(critic_loss(q, y, weights))
                qs.append(q)
            self.optimizer_step(optimizer)
        return qs, losses[0] if len(losses) == 1 else sum(losses)

    def actor_step(self, obs: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
        """One optimizer step on actor_loss(Q_1(s, mu(s))), the critic fixed; returns the loss."""
        with torch.no_grad():
            z, actor_inputs = self.actor.forward(obs)
            action = torch.tanh(z)
            critic = self.critics[0]
            q, critic_inputs = critic.forward(obs, action)
            grad_q = torch.full_like(q, -1.0 / q.shape[0])
            grad_action = critic.backward(critic_inputs, grad_q, weights=False)
            # dL/dz = dL/da (1 - a^2), the derivative of a = tanh(z)
            self.actor.backward(actor_inputs, torchops.tanh_backward(grad_action, action))
            self.optimizer_step(optimizer)
        return actor_loss(q.squeeze(1))

    def soft_update(self, tau: float) -> None:
        """theta' <- tau theta + (1 - tau) theta' for every target parameter at once: one lerp
        of the flat target tensor toward the flat online one (``equations.soft_update``'s rule)."""
        self.targets.lerp_(self.online, tau)

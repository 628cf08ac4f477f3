"""The DDPG/TD3 gradient steps computed by hand, without autograd: the hand-written path.

:class:`~dpgkit.agent.DDPGAgent` picks its gradient steps once, when it is built: the autograd
path (:mod:`dpgkit.autograd_steps`, the one to read) or these, the default where they support
the networks. Both make the same three calls. On a CPU an autograd update at 256-256 / batch 256
spends as much time in autograd's bookkeeping, temporary tensors, per-tensor optimizer kernels
and the critic-weight gradients it does not need as in its matrix products. This module computes
the same update with the chain rule written out for ReLU MLPs, starting from the derivatives that
:mod:`dpgkit.equations` gives beside each loss:

    critic step: dL/dq = equations.critic_loss_grad(q, y, w) = 2 w (q - y) / B, then back
                 through the critic's layers: dW = d^T x, db = sum_i d_i, d_in = d W, times the
                 ReLU mask (x > 0) of the layer below
    actor step:  dL/dQ = equations.actor_loss_grad(Q) = -1 / B, back through the critic to its
                 action input only (no critic weight gradients: the critic is held fixed),
                 dL/da = that; dL/dz = dL/da (1 - a^2) through tanh, then back through the
                 actor's layers as above

on the flat layout of :mod:`dpgkit.flatlayout` (one fused Adam kernel per optimiser, one lerp for
all targets). ``tests/test_fastpath.py`` checks that both paths give the same parameters, step
after step. Networks with a layer that is not on the allow-list of :func:`supports` (batch norm,
say) take the autograd path.
"""

import warnings

import torch
from torch import Tensor, nn

from dpgkit import torchops
from dpgkit.config import DDPGConfig
from dpgkit.equations import actor_loss, actor_loss_grad, critic_loss, critic_loss_grad
from dpgkit.errors import DpgkitWarning
from dpgkit.flatlayout import FlatAdam, flatten
from dpgkit.networks import Actor, Critic

NARROW = 8  # x W^T for an output this narrow runs faster as (W x^T)^T in torch's CPU kernels


def _linears(*modules: nn.Module) -> list[nn.Linear]:
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


def _is_mlp(network: nn.Module, end: list[type[nn.Module]]) -> bool:
    """Whether the layers of ``network``, in order, are (Linear, ReLU)* then ``end`` (an empty
    ``Sequential``, the critic's state part when the action enters at its input, is no layer)."""
    kinds = [type(m) for m in network.modules()
             if next(m.children(), None) is None and type(m) is not nn.Sequential]
    hidden = len(kinds) - len(end)
    return (hidden >= 0 and hidden % 2 == 0 and kinds[hidden:] == end
            and kinds[:hidden] == [nn.Linear, nn.ReLU] * (hidden // 2))


def supports(actor: nn.Module, *critics: nn.Module) -> bool:
    """Whether the hand-written path computes these networks. An allow-list of the layers it
    knows: an :class:`Actor` made of (Linear, ReLU)* Linear Tanh and :class:`Critic` s of
    (Linear, ReLU)* Linear. Anything else (batch norm, a LayerNorm, another activation) takes
    the autograd path."""
    return (isinstance(actor, Actor) and _is_mlp(actor, [nn.Linear, nn.Tanh])
            and all(isinstance(c, Critic) and _is_mlp(c, [nn.Linear]) for c in critics))


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

    def __init__(self, network: Actor | Critic, action_dim: int,
                 bf16: bool = DDPGConfig.bf16) -> None:
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
        self.matrices = [layer.weight for layer in self.layers]  # as the last forward used them
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
                self.matrices[i] = layer.weight.to(torch.bfloat16)
                operands[i] = (self.matrices[i], layer.bias.to(torch.bfloat16), "bf16")
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

    def backward(self, inputs: list[Tensor], grad_out: Tensor, parameter_grads: bool = True
                 ) -> Tensor | None:
        """Back from dL/d(output), (B, out), after the forward that gave ``inputs``. With
        ``parameter_grads``: every parameter's gradient, written into its ``.grad``. Without (a
        critic held fixed): only dL/da, returned."""
        grad = grad_out
        for i in range(self.last, -1, -1):
            layer, x, weight = self.layers[i], inputs[i], self.matrices[i]
            if grad.dtype != x.dtype:
                grad = grad.to(x.dtype)
            if parameter_grads and x.dtype == torch.float32:
                torch.mm(grad.t(), x, out=layer.weight.grad)
                torch.sum(grad, 0, out=layer.bias.grad)
            elif parameter_grads:  # a bfloat16 layer: its gradient, rounded, into the float32 .grad
                layer.weight.grad.copy_(torch.mm(grad.t(), x))
                torch.sum(grad, 0, dtype=torch.float32, out=layer.bias.grad)
            if i == self.action_at:  # the input is (features, a): d_in splits the same way
                if not parameter_grads:
                    return torch.mm(grad, weight[:, self.features:]).float()
                x, weight = x[:, :self.features], weight[:, :self.features]
            if i == 0:
                return None
            # d_in = d W, then through the ReLU that made this layer's input: zero where x <= 0
            grad = torch.mm(grad, weight)
            torchops.relu_backward_(grad, x)
        return None


class HandWrittenSteps:
    """The agent's gradient steps by hand (see the module docstring): the same calls as
    :class:`~dpgkit.autograd_steps.AutogradSteps`, on the networks laid out flat and run without
    ``nn.Module``.

    Args:
        actor, critics: the online networks (one critic for DDPG, two for TD3).
        actor_target, critic_targets: their target copies, in the same order.
        actor_optimizer, critic_optimizer: the optimisers of the actor and of all critics.
        bf16: run the hidden-to-hidden products in bfloat16 (see :class:`MLP`).
    """

    def __init__(self, actor: Actor, critics: list[Critic], actor_target: Actor,
                 critic_targets: list[Critic], actor_optimizer: torch.optim.Optimizer,
                 critic_optimizer: torch.optim.Optimizer,
                 bf16: bool = DDPGConfig.bf16) -> None:
        self.online, self.grads = flatten([actor, *critics], gradients=True)
        self.targets, _ = flatten([actor_target, *critic_targets], gradients=False)
        if bf16 and not torchops.native_bf16():
            warnings.warn("bf16: this CPU has no native bfloat16 products (AVX-512 BF16 or "
                          "AMX), so they run through torch's slower kernels: the same bfloat16 "
                          "arithmetic, slower than float32 here; for speed, leave bf16 off",
                          DpgkitWarning, stacklevel=3)
        action_dim = _linears(actor)[-1].out_features
        self.actor = MLP(actor, action_dim, bf16)
        self.critics = [MLP(critic, action_dim, bf16) for critic in critics]
        self.actor_target = MLP(actor_target, action_dim, bf16)
        self.critic_targets = [MLP(target, action_dim, bf16) for target in critic_targets]
        self.actor_optimizer, self.critic_optimizer = actor_optimizer, critic_optimizer
        self._steppers: dict[int, FlatAdam] = {}

    def act(self, obs: Tensor) -> Tensor:
        """mu(s), (B, obs_dim) -> (B, action_dim): the actor's layers without ``nn.Module``."""
        return self.actor(obs)

    def target_action(self, next_obs: Tensor) -> Tensor:
        """mu'(s'), (B, action_dim)."""
        return self.actor_target(next_obs)

    def target_q(self, next_obs: Tensor, next_action: Tensor) -> list[Tensor]:
        """Q'_k(s', a') of every target critic, each (B,)."""
        return [target(next_obs, next_action) for target in self.critic_targets]

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``, as one fused kernel where it can be (:class:`FlatAdam`)."""
        stepper = self._steppers.get(id(optimizer))
        if stepper is None or stepper.optimizer is not optimizer:
            stepper = self._steppers[id(optimizer)] = FlatAdam(optimizer, self.online,
                                                               self.grads)
        stepper.step()

    def critic_step(self, obs: Tensor, action: Tensor, y: Tensor, weights: Tensor | None
                    ) -> tuple[list[Tensor], Tensor]:
        """One optimizer step on sum_k critic_loss(Q_k(s, a), y); returns each critic's
        Q(s, a) (B,) and the summed loss."""
        qs, losses = [], []
        with torch.no_grad():
            for critic in self.critics:
                q, inputs = critic.forward(obs, action)
                q = q.squeeze(1)
                critic.backward(inputs, critic_loss_grad(q, y, weights).unsqueeze(1))
                losses.append(critic_loss(q, y, weights))
                qs.append(q)
            self.optimizer_step(self.critic_optimizer)
        return qs, sum(losses[1:], losses[0])

    def actor_step(self, obs: Tensor) -> Tensor:
        """One optimizer step on actor_loss(Q_1(s, mu(s))), the critics fixed; returns the
        loss."""
        with torch.no_grad():
            z, actor_inputs = self.actor.forward(obs)
            action = torch.tanh(z)
            critic = self.critics[0]
            q, critic_inputs = critic.forward(obs, action)  # (B, 1), the layout backward takes
            grad_action = critic.backward(critic_inputs, actor_loss_grad(q),
                                          parameter_grads=False)
            # dL/dz = dL/da (1 - a^2), the derivative of a = tanh(z)
            self.actor.backward(actor_inputs, torchops.tanh_backward(grad_action, action))
            self.optimizer_step(self.actor_optimizer)
        return actor_loss(q.squeeze(1))

    def soft_update(self, tau: float) -> None:
        """theta' <- tau theta + (1 - tau) theta' for every target parameter at once: one lerp
        of the flat target tensor toward the flat online one (``equations.soft_update``'s rule)."""
        self.targets.lerp_(self.online, tau)

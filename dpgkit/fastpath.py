"""The DDPG/TD3 gradient steps computed by hand, without autograd: the fast path.

:class:`~dpgkit.agent.DDPGAgent` states each step with the named equations and lets autograd
differentiate them; that reference path is the one to read. On a CPU, though, an update at
256-256 / batch 256 spends as much time in autograd's bookkeeping, temporary tensors and the
critic-weight gradients it does not need as in its matrix products. This module computes the
same two gradient steps with the chain rule written out for ReLU MLPs, into gradient buffers
allocated once:

    critic step: dL/dq_i = 2 w_i (q_i - y_i) / B  (w_i = 1 unless prioritized), then back
                 through the critic's layers: dW = d^T x, db = sum_i d_i, d_in = d W, times the
                 ReLU mask (x > 0) of the layer below
    actor step:  dL/dq_i = -1 / B back through the critic to its action input only (no critic
                 weight gradients: the critic is held fixed), dL/da = that; dL/dz = dL/da (1 - a^2)
                 through tanh, then back through the actor's layers as above

The optimisers, the TD target and the soft updates are the agent's own, unchanged.
``tests/test_fastpath.py`` checks that both paths give the same parameters, step after step.
Networks with batch normalisation always take the reference path.
"""

import torch
from torch import Tensor, nn

from dpgkit.equations import actor_loss, critic_loss
from dpgkit.networks import Actor, Critic


def _linears(*modules: nn.Module) -> list[nn.Linear]:
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


def supports(*networks: nn.Module) -> bool:
    """Whether the fast path can run these networks: Linear + ReLU only (no batch norm)."""
    return not any(isinstance(m, nn.BatchNorm1d) for net in networks for m in net.modules())


class MLP:
    """The layers of an actor or critic as a plain list, with a forward pass that keeps each
    layer's input and a backward pass that writes the parameter gradients in place."""

    def __init__(self, network: Actor | Critic, action_dim: int) -> None:
        if isinstance(network, Critic):
            self.layers = _linears(network.state_net, network.joint_net)
            self.action_at = len(_linears(network.state_net))  # the layer whose input has a
        else:
            self.layers, self.action_at = _linears(network.net), -1
        self.action_dim = action_dim
        for layer in self.layers:
            for p in layer.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)

    def forward(self, x: Tensor, action: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """The network's output before any final activation, (B, out), and each layer's input."""
        inputs = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == self.action_at:
                x = torch.cat([x, action], dim=1)
            inputs.append(x)
            x = torch.addmm(layer.bias, x, layer.weight.t())
            if i < last:
                x.relu_()
        return x, inputs

    def backward(self, inputs: list[Tensor], grad_out: Tensor, weights: bool = True
                 ) -> Tensor | None:
        """Back from dL/d(output), (B, out). With ``weights``: every parameter's gradient,
        written into its ``.grad``. Without (a critic held fixed): only dL/da, returned."""
        grad = grad_out
        for i in range(len(self.layers) - 1, -1, -1):
            layer, x = self.layers[i], inputs[i]
            if weights:
                torch.mm(grad.t(), x, out=layer.weight.grad)
                torch.sum(grad, dim=0, out=layer.bias.grad)
            weight = layer.weight
            if i == self.action_at:  # the input is (features, a)
                features = x.shape[1] - self.action_dim
                if not weights:
                    return torch.mm(grad, weight[:, features:])
                weight, x = weight[:, :features], x[:, :features]
            if i == 0:
                return None
            # d_in = d W, then through the ReLU that made this layer's input: zero where x <= 0
            grad = torch.ops.aten.threshold_backward(torch.mm(grad, weight), x, 0.0)
        return None


def optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``; for a fused Adam whose state exists, the same two kernels it would
    run (step counts += 1, then ``torch._fused_adam_``) without its per-call Python bookkeeping
    (hooks, grouping by device, profiling records), which costs more than the kernels here."""
    group = optimizer.param_groups[0]
    params = group["params"]
    fast = (isinstance(optimizer, torch.optim.Adam) and group["fused"]
            and len(optimizer.param_groups) == 1 and len(optimizer.state) == len(params)
            and not any(group[flag] for flag in ("amsgrad", "maximize", "capturable",
                                                 "differentiable", "decoupled_weight_decay"))
            and not optimizer._optimizer_step_pre_hooks
            and not optimizer._optimizer_step_post_hooks)
    if not fast:
        optimizer.step()
        return
    states = [optimizer.state[p] for p in params]
    steps = [state["step"] for state in states]
    beta1, beta2 = group["betas"]
    torch._foreach_add_(steps, 1)
    torch._fused_adam_(params, [p.grad for p in params], [state["exp_avg"] for state in states],
                       [state["exp_avg_sq"] for state in states], [], steps, amsgrad=False,
                       lr=group["lr"], beta1=beta1, beta2=beta2,
                       weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)


class FastUpdate:
    """The agent's critic and actor gradient steps by hand (see the module docstring)."""

    def __init__(self, actor: Actor, critics: list[Critic], action_dim: int) -> None:
        self.actor = MLP(actor, action_dim)
        self.critics = [MLP(critic, action_dim) for critic in critics]

    def critic_step(self, obs: Tensor, action: Tensor, y: Tensor, weights: Tensor | None,
                    optimizer: torch.optim.Optimizer) -> tuple[list[Tensor], Tensor]:
        """One optimizer step on sum_k critic_loss(Q_k(s, a), y); returns each critic's
        Q(s, a) (B,) and the summed loss."""
        batch = y.shape[0]
        qs, total = [], torch.zeros(())
        with torch.no_grad():
            for critic in self.critics:
                q, inputs = critic.forward(obs, action)
                q = q.squeeze(1)
                error = q - y
                scale = 2.0 / batch if weights is None else weights * (2.0 / batch)
                critic.backward(inputs, (error * scale).unsqueeze(1))
                total = total + critic_loss(q, y, weights)
                qs.append(q)
            optimizer_step(optimizer)
        return qs, total

    def actor_step(self, obs: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
        """One optimizer step on actor_loss(Q_1(s, mu(s))), the critic fixed; returns the loss."""
        with torch.no_grad():
            z, actor_inputs = self.actor.forward(obs)
            action = torch.tanh(z)
            critic = self.critics[0]
            q, critic_inputs = critic.forward(obs, action)
            grad_q = torch.full_like(q, -1.0 / q.shape[0])
            grad_action = critic.backward(critic_inputs, grad_q, weights=False)
            grad_z = grad_action * (1.0 - action.square())
            self.actor.backward(actor_inputs, grad_z)
            optimizer_step(optimizer)
        return actor_loss(q.squeeze(1))

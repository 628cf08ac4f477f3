"""The deterministic actor mu_theta(s) and the critic Q_w(s, a).

Both are plain multilayer perceptrons with ReLU hidden layers. The actor ends in tanh, so its
action lies in [-1, 1]^d; the environment's own bounds are applied only at the environment's edge
(``dpgkit.equations.scale_action``). The critic returns shape (B,).

The options cover the paper's architecture (Lillicrap et al. 2016, section 7): hidden sizes, the
hidden layer at which the action enters Q, batch normalisation of the state input and of the layers
before the action, and the initialisation U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with final layers
U(-3e-3, 3e-3).
"""

import math

import torch
from torch import Tensor, nn

from dpgkit.config import DDPGConfig


def fan_in_uniform_(layer: nn.Linear, bound: float | None = None) -> None:
    """W, b ~ U(-bound, bound), with bound = 1 / sqrt(fan_in) unless given.

    The paper's initialisation (its final layers use bound = 3e-3, so the first actions and
    Q-values are near zero).
    """
    if bound is None:
        bound = 1.0 / math.sqrt(layer.in_features)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.uniform_(layer.bias, -bound, bound)


def _hidden_block(in_features: int, out_features: int, batch_norm: bool,
                  layer_norm: bool = False) -> nn.Sequential:
    layer = nn.Linear(in_features, out_features)
    fan_in_uniform_(layer)
    if batch_norm:
        return nn.Sequential(layer, nn.BatchNorm1d(out_features), nn.ReLU())
    if layer_norm:  # Plappert et al. 2018: normalised layers keep a perturbation's effect even
        return nn.Sequential(layer, nn.LayerNorm(out_features), nn.ReLU())
    return nn.Sequential(layer, nn.ReLU())


def _output_layer(in_features: int, out_features: int, final_init: float) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    fan_in_uniform_(layer, final_init if final_init > 0 else None)
    return layer


class Actor(nn.Module):
    """mu_theta(s) = tanh(MLP(s)), a deterministic policy with actions in [-1, 1]^action_dim.

    Args:
        obs_dim: size of the (flat) observation.
        action_dim: size of the action.
        hidden: sizes of the ReLU hidden layers, e.g. (256, 256).
        batch_norm: normalise the state input and every hidden layer (the paper's setting).
        final_init: the last layer's weights and biases are drawn from U(-final_init, final_init);
            0 means the fan-in rule U(+-1/sqrt(fan_in)) used by the other layers.
        layer_norm: Linear, LayerNorm, ReLU in each hidden layer (with parameter noise).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: tuple[int, ...],
        batch_norm: bool = DDPGConfig.batch_norm,
        final_init: float = DDPGConfig.final_init,
        layer_norm: bool = DDPGConfig.actor_layer_norm,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(obs_dim)] if batch_norm else []
        sizes = (obs_dim, *hidden)
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers.append(_hidden_block(n_in, n_out, batch_norm, layer_norm))
        layers += [_output_layer(sizes[-1], action_dim, final_init), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, obs: Tensor) -> Tensor:
        """(B, obs_dim) -> (B, action_dim) in [-1, 1]."""
        return self.net(obs)


class Critic(nn.Module):
    """Q_w(s, a) = MLP(s, a), the action-value of taking a in s and following mu after.

    The action joins the network at hidden layer ``action_layer``: 0 feeds concat(s, a) to the
    first layer (the common modern choice); 1 is the paper's, where a enters with the output of the
    first hidden layer. Batch normalisation, when on, applies to the state input and to the hidden
    layers *before* the action enters, as in the paper.

    Args:
        obs_dim, action_dim: input sizes.
        hidden: sizes of the ReLU hidden layers, e.g. (400, 300).
        action_layer: the hidden layer whose input includes the action (0 .. len(hidden) - 1).
        batch_norm: see above.
        final_init: as for :class:`Actor`.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: tuple[int, ...],
        action_layer: int = DDPGConfig.critic_action_layer,
        batch_norm: bool = DDPGConfig.batch_norm,
        final_init: float = DDPGConfig.final_init,
    ) -> None:
        super().__init__()
        if not 0 <= action_layer < len(hidden):
            raise ValueError(f"action_layer must be in [0, {len(hidden) - 1}], got {action_layer}")
        state_layers: list[nn.Module] = [nn.BatchNorm1d(obs_dim)] if batch_norm else []
        sizes = (obs_dim, *hidden[:action_layer])
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            state_layers.append(_hidden_block(n_in, n_out, batch_norm))
        self.state_net = nn.Sequential(*state_layers)

        joint_layers: list[nn.Module] = []
        sizes = (sizes[-1] + action_dim, *hidden[action_layer:])
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            joint_layers.append(_hidden_block(n_in, n_out, batch_norm=False))
        joint_layers.append(_output_layer(sizes[-1], 1, final_init))
        self.joint_net = nn.Sequential(*joint_layers)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """(B, obs_dim), (B, action_dim) -> (B,)."""
        features = self.state_net(obs)
        return self.joint_net(torch.cat([features, action], dim=-1)).squeeze(-1)


def mlp_parameters(sizes: list[int]) -> int:
    """The weights and biases of an MLP with layer ``sizes`` (input, hidden..., output)."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in
               zip(sizes[:-1], sizes[1:], strict=True))

"""TD7's networks (Fujimoto et al. 2023): the SALE encoder, and the actor and critic that read it.

SALE (state-action learned embeddings) learns two encoders:

    zs  = f(s)       = AvgL1Norm(Linear(ELU(Linear(ELU(Linear(s))))))
    zsa = g(zs, a)   = Linear(ELU(Linear(ELU(Linear([zs, a])))))

trained together so that zsa predicts the next state's zs (:func:`~dpgkit.equations.
embedding_loss`). The actor and the critic each start from their own linear layer of the raw
input, scaled by AvgL1Norm, and read the embeddings beside it:

    mu(s)    = tanh(Linear(ReLU(Linear(ReLU(Linear([AvgL1Norm(Linear(s)), zs]))))))
    Q(s, a)  = Linear(ELU(Linear(ELU(Linear([AvgL1Norm(Linear([s, a])), zsa, zs])))))

Sizes and activations are the authors' defaults (sfujim/TD7, ``TD7.py``: zs_dim 256, 256 hidden
units, ELU in the encoder and critic, ReLU in the actor), each a constructor argument. Every
layer keeps PyTorch's default initialisation, as in the authors' code: W, b ~ U(+-1/sqrt(fan_in))
(dpgkit's DDPG networks draw their last layer from U(+-3e-3) instead). The caller seeds torch.

The encoder's outputs reach the actor and the critic as inputs only: which copy of the encoder
gives them (the online one, a fixed one, a target one) and whether gradients flow through are the
agent's choice. The authors' critic holds both of TD7's Q heads in one module; dpgkit keeps one
module per critic, as its TD3 does, so :class:`TD7Critic` is one head, returning shape (B,).

Only torch is imported here.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpgkit.equations import avg_l1_norm

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"elu": F.elu, "relu": F.relu}


def activation_function(name: str) -> Callable[[Tensor], Tensor]:
    """The activation called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class SALEEncoder(nn.Module):
    """The state encoder zs = f(s) and the state-action encoder zsa = g(zs, a), in one module
    (they are trained by one loss with one optimiser, and copied together).

    Args:
        obs_dim, action_dim: input sizes.
        zs_dim: size of the embeddings zs and zsa (256 in TD7).
        hidden: units of each of the two hidden layers of f and of g (256 in TD7).
        activation: of the hidden layers, ``"elu"`` in TD7.
    """

    def __init__(self, obs_dim: int, action_dim: int, zs_dim: int = 256, hidden: int = 256,
                 activation: str = "elu") -> None:
        super().__init__()
        self.activation = activation_function(activation)
        # f, then g: the authors' order of construction, hence of the seeded initial draws
        self.state_layers = nn.ModuleList([nn.Linear(obs_dim, hidden), nn.Linear(hidden, hidden),
                                           nn.Linear(hidden, zs_dim)])
        self.state_action_layers = nn.ModuleList([nn.Linear(zs_dim + action_dim, hidden),
                                                  nn.Linear(hidden, hidden),
                                                  nn.Linear(hidden, zs_dim)])

    def zs(self, obs: Tensor) -> Tensor:
        """zs = f(s) = AvgL1Norm(Linear(act(Linear(act(Linear(s)))))): (B, obs_dim) ->
        (B, zs_dim), each row of mean absolute value 1."""
        first, second, out = self.state_layers
        return avg_l1_norm(out(self.activation(second(self.activation(first(obs))))))

    def zsa(self, zs: Tensor, action: Tensor) -> Tensor:
        """zsa = g(zs, a) = Linear(act(Linear(act(Linear([zs, a]))))): (B, zs_dim),
        (B, action_dim) -> (B, zs_dim), unnormalised (it predicts the next zs)."""
        first, second, out = self.state_action_layers
        x = self.activation(first(torch.cat([zs, action], dim=-1)))
        return out(self.activation(second(x)))

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """g(f(s), a), the prediction of the next state's zs = f(s'): (B, zs_dim)."""
        return self.zsa(self.zs(obs), action)


class TD7Actor(nn.Module):
    """mu(s, zs) = tanh(MLP([AvgL1Norm(Linear(s)), zs])), actions in [-1, 1]^action_dim.

    Args:
        obs_dim, action_dim: sizes of the observation and the action.
        zs_dim: size of the state embedding zs it reads.
        hidden: units of the first linear layer of s and of each hidden layer (256 in TD7).
        activation: of the hidden layers, ``"relu"`` in TD7.
    """

    def __init__(self, obs_dim: int, action_dim: int, zs_dim: int = 256, hidden: int = 256,
                 activation: str = "relu") -> None:
        super().__init__()
        self.activation = activation_function(activation)
        self.obs_layer = nn.Linear(obs_dim, hidden)
        self.hidden_layers = nn.ModuleList([nn.Linear(zs_dim + hidden, hidden),
                                            nn.Linear(hidden, hidden)])
        self.out = nn.Linear(hidden, action_dim)

    def forward(self, obs: Tensor, zs: Tensor) -> Tensor:
        """(B, obs_dim), (B, zs_dim) -> (B, action_dim) in [-1, 1]."""
        x = torch.cat([avg_l1_norm(self.obs_layer(obs)), zs], dim=-1)
        for layer in self.hidden_layers:
            x = self.activation(layer(x))
        return torch.tanh(self.out(x))


class TD7Critic(nn.Module):
    """Q(s, a, zsa, zs) = MLP([AvgL1Norm(Linear([s, a])), zsa, zs]), one of TD7's two critics.

    Args:
        obs_dim, action_dim: input sizes.
        zs_dim: size of the embeddings zs and zsa it reads.
        hidden: units of the first linear layer of (s, a) and of each hidden layer (256 in TD7).
        activation: of the hidden layers, ``"elu"`` in TD7.
    """

    def __init__(self, obs_dim: int, action_dim: int, zs_dim: int = 256, hidden: int = 256,
                 activation: str = "elu") -> None:
        super().__init__()
        self.activation = activation_function(activation)
        self.obs_action_layer = nn.Linear(obs_dim + action_dim, hidden)
        self.hidden_layers = nn.ModuleList([nn.Linear(2 * zs_dim + hidden, hidden),
                                            nn.Linear(hidden, hidden)])
        self.out = nn.Linear(hidden, 1)

    def forward(self, obs: Tensor, action: Tensor, zsa: Tensor, zs: Tensor) -> Tensor:
        """(B, obs_dim), (B, action_dim), (B, zs_dim), (B, zs_dim) -> (B,)."""
        features = avg_l1_norm(self.obs_action_layer(torch.cat([obs, action], dim=-1)))
        x = torch.cat([features, zsa, zs], dim=-1)
        for layer in self.hidden_layers:
            x = self.activation(layer(x))
        return self.out(x).squeeze(-1)


class TD7Policy(nn.Module):
    """TD7's policy as one module, raw observation -> action in [-1, 1]: mu(s, f(s)), an actor
    with the state encoder it acts with (for acting, evaluation and export).

    Args:
        encoder: the SALE encoder whose zs = f(s) the actor reads.
        actor: the actor mu(s, zs).
    """

    def __init__(self, encoder: SALEEncoder, actor: TD7Actor) -> None:
        super().__init__()
        self.encoder, self.actor = encoder, actor

    def forward(self, obs: Tensor) -> Tensor:
        """(B, obs_dim) -> (B, action_dim)."""
        return self.actor(obs, self.encoder.zs(obs))

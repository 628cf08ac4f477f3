"""A stuck actor, said out loud: the policy's tanh saturated in every state it was evaluated in.

The actor is mu(s) = tanh(u(s)), and the policy gradient reaches u through tanh'(u) =
1 - tanh(u)^2: where |u| > 7.25 that factor is below 4e-6 (|mu| within 1e-6 of the bound), and
Adam's steps, scaled by the larger gradients it has seen, all but stop. An actor pushed there for
every state in its first updates acts at the bound ever after, whatever the critic learns: the
evaluation return is then the same at every evaluation, for the rest of the run.
InvertedDoublePendulum-v5 with the ``td3`` preset (the paper's learning rates, 1e-3) did this
on 7 of 30 seeds within 2,000 env steps (a TD3 written to the letter of its authors' 2018 code
on 3 of 30: the same within chance), and on 1 of 10 with 3e-4 (docs/presets.md, "A stuck
actor"; the probe is ``benchmarks/actor_saturation.py``). :meth:`dpgkit.loop.Trainer.evaluate`
calls :func:`warn_if_saturated` with the actions of each evaluation, so such a run says so
instead of training on silently.

The actions checked are the actor in training's, the one the policy gradient reaches
(:func:`trained_actions`): where the run deploys another policy (TD7's checkpointed actor), its
saturation says nothing of the gradient. TD7 on Walker2d-v5, seed 0: at 30,000 env steps its
checkpointed policy sat at the bound in dimensions 1 and 4 of all 1,568 evaluated states, while
its actor in training did in 91% and 94% of them, and the return went on from 285 to 572 at
35,000.
"""

import warnings
from typing import TYPE_CHECKING

import numpy as np

from dpgkit.errors import DpgkitWarning

if TYPE_CHECKING:
    from dpgkit.agent import DDPGAgent

SATURATED = 1.0 - 1e-6
"""|mu| at or above this is saturated: |u| > 7.25, tanh'(u) < 4e-6."""


def saturated_dimensions(actions: np.ndarray) -> list[int]:
    """The action dimensions in which every row of ``actions`` (N, action_dim), in [-1, 1],
    sits at a bound: |mu| >= :data:`SATURATED` (N >= 1)."""
    actions = np.asarray(actions).reshape(len(actions), -1)
    return [int(d) for d in np.flatnonzero(np.all(np.abs(actions) >= SATURATED, axis=0))]


def trained_actions(agent: "DDPGAgent", states: list[np.ndarray],
                    deployed: list[np.ndarray]) -> np.ndarray:
    """The actor in training's actions at the evaluation's ``states``: the ``deployed`` ones
    where the agent deploys that actor (DDPG, TD3), else its own (TD7), as (N, action_dim)."""
    if not states or agent.deployed_policy() is agent.actor:
        return np.array(deployed)
    return agent.act(np.array(states))


def warn_if_saturated(actions: np.ndarray, env_steps: int) -> bool:
    """Warn (once per call that finds it) when :func:`saturated_dimensions` of the evaluation's
    ``actions`` is not empty; return whether it warned."""
    dims = saturated_dimensions(actions) if len(actions) else []
    if not dims:
        return False
    where = ", ".join(f"{d} (at {'+' if np.asarray(actions)[0, d] > 0 else '-'}1)" for d in dims)
    warnings.warn(f"at env step {env_steps} the actor's action dimension(s) {where} sat at the "
                  f"bound in every one of the {len(actions)} states of the evaluation: its tanh "
                  "is saturated there, the policy gradient has all but vanished, and the run "
                  "may never leave it (the same evaluation return from now on). Restart with "
                  "lower learning rates (td3: --actor_lr 3e-4 --critic_lr 3e-4) or another seed "
                  "(docs/presets.md, 'A stuck actor')", DpgkitWarning, stacklevel=2)
    return True

"""A stuck actor (tanh saturated in every evaluated state) is said out loud, once a run."""

import warnings

import numpy as np
import pytest
import torch

import dpgkit
from dpgkit.errors import DpgkitWarning
from dpgkit.saturation import SATURATED, saturated_dimensions, warn_if_saturated


def test_a_dimension_is_saturated_when_every_state_sits_at_a_bound():
    actions = np.array([[1.0, 0.2, -1.0], [1.0, -1.0, -1.0], [SATURATED, 0.0, -0.9999995]])
    assert saturated_dimensions(actions) == [0, 2]
    assert saturated_dimensions(actions[:, 1:2]) == []
    assert saturated_dimensions(np.array([[1.0 - 2e-6]])) == []  # |u| about 7.1: not yet
    assert saturated_dimensions(np.tanh(np.array([[7.6], [-9.8]], np.float32))) == [0]
    assert not warn_if_saturated(np.zeros((0, 2)), 100)  # no evaluation state: nothing to say


def test_a_run_whose_actor_saturated_warns_once_and_names_the_dimension(tmp_path):
    model = dpgkit.TD3("Pendulum-v1", run_dir=tmp_path / "run", warmup_steps=100,
                       batch_size=16, actor_hidden=(16,), critic_hidden=(16,),
                       eval_every_steps=200, eval_episodes=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DpgkitWarning)  # a healthy run: no warning
        model.learn(200)
    last = [m for m in model.agent.actor.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias.fill_(-50.0)  # u < -40 in every state: mu = -1, tanh' = 0
    with pytest.warns(DpgkitWarning, match=r"action dimension\(s\) 0 \(at -1\) sat at the bound "
                                           r"in every one of the 200 states.*"
                                           r"--actor_lr 3e-4 --critic_lr 3e-4"):
        model.trainer.evaluate()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DpgkitWarning)
        model.trainer.evaluate()  # said once a run


def test_td7_is_judged_by_its_actor_in_training_not_its_checkpointed_policy(tmp_path):
    """TD7 evaluates its checkpointed policy, but the gradient reaches the actor in training: a
    saturated checkpoint alone says nothing (TD7's Walker2d seed 0 at 30,000 steps), a saturated
    actor in training warns, once."""
    model = dpgkit.TD7("Pendulum-v1", run_dir=tmp_path / "run", warmup_steps=100, batch_size=16,
                       actor_hidden=(16,), critic_hidden=(16,), zs_dim=8, encoder_hidden=16,
                       checkpoint_min_steps=200, eval_every_steps=400, eval_episodes=1)
    model.learn(400)
    agent = model.agent

    def last_linear(actor: torch.nn.Module) -> torch.nn.Linear:
        return [m for m in actor.modules() if isinstance(m, torch.nn.Linear)][-1]

    with torch.no_grad():
        last_linear(agent.checkpoint_actor).bias.fill_(50.0)
    assert np.all(agent.deployed_act(np.zeros((4, 3), np.float32)) == 1.0)  # deployed: stuck
    with warnings.catch_warnings():
        warnings.simplefilter("error", DpgkitWarning)
        model.trainer.evaluate()
    with torch.no_grad():
        last_linear(agent.actor).bias.fill_(50.0)
    with pytest.warns(DpgkitWarning, match=r"action dimension\(s\) 0 \(at \+1\) sat at the bound "
                                           r"in every one of the 200 states"):
        model.trainer.evaluate()

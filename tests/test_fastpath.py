"""The hand-written gradient steps (dpgkit/fastpath.py) against the autograd reference path: the
same parameters, losses and TD errors, update after update, for every network layout."""

import pytest
import torch

from dpgkit.config import preset_config
from dpgkit.replay import Batch
from dpgkit.td3 import make_agent

OBS_DIM, ACTION_DIM, B = 5, 3, 64


def batches(n: int, weighted: bool) -> list[Batch]:
    g = torch.Generator().manual_seed(7)
    return [Batch(obs=torch.randn(B, OBS_DIM, generator=g),
                  action=torch.rand(B, ACTION_DIM, generator=g) * 2 - 1,
                  reward=torch.randn(B, generator=g), next_obs=torch.randn(B, OBS_DIM, generator=g),
                  terminated=(torch.rand(B, generator=g) < 0.1).float(),
                  steps=torch.randint(1, 4, (B,), generator=g).float() if weighted else None,
                  weights=torch.rand(B, generator=g) if weighted else None)
            for _ in range(n)]


@pytest.mark.parametrize("preset, settings", [
    ("ddpg", {}),
    ("ddpg", {"critic_action_layer": 1, "critic_weight_decay": 1e-2}),
    ("ddpg", {"critic_hidden": (16, 8, 8), "critic_action_layer": 2, "optimizer": "sgd"}),
    ("td3", {}),
    ("td3", {"critic_action_layer": 1, "policy_delay": 3}),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_fast_path_computes_the_reference_update(preset, settings, weighted):
    base = dict(actor_hidden=(16, 12), critic_hidden=(16, 12), final_init=0.0, seed=3,
                actor_lr=1e-2, critic_lr=1e-2)
    fast = make_agent(OBS_DIM, ACTION_DIM, preset_config(preset, **{**base, **settings}))
    reference = make_agent(OBS_DIM, ACTION_DIM,
                           preset_config(preset, **{**base, **settings}, fast_update=False))
    assert fast.fast is not None and reference.fast is None
    for batch in batches(6, weighted):
        info_fast, info_reference = fast.update(batch), reference.update(batch)
        assert info_fast.keys() == info_reference.keys()
        for key in info_fast:
            assert info_fast[key] == pytest.approx(info_reference[key], rel=1e-4, abs=1e-6), key
        torch.testing.assert_close(fast.td_error, reference.td_error, rtol=1e-4, atol=1e-5)
    for name, module in fast.modules().items():
        for (key, value), expected in zip(module.state_dict().items(),
                                          reference.modules()[name].state_dict().values(),
                                          strict=True):
            torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-5,
                                       msg=f"{name}.{key}")
        # and the networks really moved: the comparison is not between two untouched copies
    assert not torch.equal(fast.actor.state_dict()["net.0.0.weight"],
                           make_agent(OBS_DIM, ACTION_DIM, preset_config(
                               preset, **{**base, **settings})).actor.state_dict()[
                               "net.0.0.weight"])


def test_batch_norm_takes_the_reference_path():
    agent = make_agent(OBS_DIM, ACTION_DIM, preset_config("ddpg-paper", actor_hidden=(8,),
                                                          critic_hidden=(8, 8)))
    assert agent.fast is None
    agent.update(batches(1, False)[0])


def test_fast_acting_matches_the_actor_module():
    config = preset_config("ddpg", actor_hidden=(16, 12), critic_hidden=(16, 12), final_init=0.0)
    fast = make_agent(OBS_DIM, ACTION_DIM, config)
    obs = torch.randn(7, OBS_DIM).numpy()
    with torch.no_grad():
        expected = fast.actor(torch.from_numpy(obs)).numpy()
    torch.testing.assert_close(fast.act(obs), expected)
    torch.testing.assert_close(fast.act(obs[0]), expected[0])

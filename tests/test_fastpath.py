"""The hand-written gradient steps (dpgkit/fastpath.py) against the autograd path: the
same parameters, losses and TD errors, update after update, for every network layout."""

import contextlib

import pytest
import torch
from torch import nn

import dpgkit.agent
from dpgkit import autograd_steps, fastpath, torchops
from dpgkit.agents import make_agent
from dpgkit.autograd_steps import AutogradSteps
from dpgkit.fastpath import HandWrittenSteps, supports
from dpgkit.networks import Actor, Critic
from dpgkit.presets import preset_config
from dpgkit.replay import Batch
from tests.test_equations import huber_critic_loss, huber_critic_loss_grad

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
def test_hand_written_path_computes_the_autograd_update(preset, settings, weighted):
    assert_both_paths_make_one_update(preset, settings, weighted)


def assert_both_paths_make_one_update(preset: str, settings: dict, weighted: bool) -> None:
    base = dict(actor_hidden=(16, 12), critic_hidden=(16, 12), final_init=0.0, seed=3,
                actor_lr=1e-2, critic_lr=1e-2)
    fast = make_agent(OBS_DIM, ACTION_DIM, preset_config(preset, **{**base, **settings}))
    autograd = make_agent(OBS_DIM, ACTION_DIM,
                          preset_config(preset, **{**base, **settings}, fast_update=False))
    assert isinstance(fast.gradient_steps, HandWrittenSteps) and isinstance(
        autograd.gradient_steps, AutogradSteps)
    for batch in batches(6, weighted):
        info_fast, info_autograd = fast.update(batch), autograd.update(batch)
        assert info_fast.keys() == info_autograd.keys()
        for key in info_fast:
            assert info_fast[key] == pytest.approx(info_autograd[key], rel=1e-4, abs=1e-6), key
        torch.testing.assert_close(fast.td_error, autograd.td_error, rtol=1e-4, atol=1e-5)
    for name, module in fast.modules().items():
        for (key, value), expected in zip(module.state_dict().items(),
                                          autograd.modules()[name].state_dict().values(),
                                          strict=True):
            torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-5,
                                       msg=f"{name}.{key}")
        # and the networks really moved: the comparison is not between two untouched copies
    assert not torch.equal(fast.actor.state_dict()["net.0.0.weight"],
                           make_agent(OBS_DIM, ACTION_DIM, preset_config(
                               preset, **{**base, **settings})).actor.state_dict()[
                               "net.0.0.weight"])


def test_a_loss_changed_without_its_gradient_makes_the_paths_disagree(monkeypatch):
    """critic_loss becomes a Huber loss on both paths, critic_loss_grad stays: the hand-written
    update no longer follows the loss and the comparison above fails. Changed beside it, the
    gradient makes the two paths agree again."""
    monkeypatch.setattr(autograd_steps, "critic_loss", huber_critic_loss)
    monkeypatch.setattr(fastpath, "critic_loss", huber_critic_loss)
    with pytest.raises(AssertionError):
        assert_both_paths_make_one_update("ddpg", {}, weighted=True)
    monkeypatch.setattr(fastpath, "critic_loss_grad", huber_critic_loss_grad)
    assert_both_paths_make_one_update("ddpg", {}, weighted=True)


def with_layer_norm(*args, **kwargs) -> Critic:
    """A critic with a LayerNorm after its first layer: a layer the hand-written path lacks."""
    critic = Critic(*args, **kwargs)
    first = critic.joint_net[0]
    critic.joint_net[0] = nn.Sequential(first[0], nn.LayerNorm(first[0].out_features), first[1])
    return critic


def test_a_layer_the_hand_written_path_does_not_know_takes_the_autograd_path(monkeypatch):
    actor, critic = Actor(OBS_DIM, ACTION_DIM, (8, 8)), Critic(OBS_DIM, ACTION_DIM, (8, 8), 1)
    assert supports(actor, critic)
    assert not supports(actor, with_layer_norm(OBS_DIM, ACTION_DIM, (8, 8)))
    actor.net[1][1] = nn.Tanh()  # another activation in a hidden layer
    assert not supports(actor, critic)
    monkeypatch.setattr(dpgkit.agent, "Critic", with_layer_norm)
    agent = make_agent(OBS_DIM, ACTION_DIM, preset_config("td3", actor_hidden=(8,),
                                                          critic_hidden=(8, 8)))
    assert isinstance(agent.gradient_steps, AutogradSteps)
    agent.update(batches(1, False)[0])


def test_batch_norm_takes_the_autograd_path():
    agent = make_agent(OBS_DIM, ACTION_DIM, preset_config("ddpg-paper", actor_hidden=(8,),
                                                          critic_hidden=(8, 8)))
    assert isinstance(agent.gradient_steps, AutogradSteps)
    agent.update(batches(1, False)[0])


def test_fast_acting_matches_the_actor_module():
    config = preset_config("ddpg", actor_hidden=(16, 12), critic_hidden=(16, 12), final_init=0.0)
    fast = make_agent(OBS_DIM, ACTION_DIM, config)
    obs = torch.randn(7, OBS_DIM).numpy()
    with torch.no_grad():
        expected = fast.actor(torch.from_numpy(obs)).numpy()
    torch.testing.assert_close(fast.act(obs), expected)
    torch.testing.assert_close(fast.act(obs[0]), expected[0])


@pytest.mark.parametrize("preset", ["ddpg", "td3"])
def test_a_loaded_checkpoint_continues_on_the_fast_path_as_on_the_autograd_path(preset):
    """The fast path steps Adam on flat copies of the optimiser's state: after a checkpoint is
    loaded into a fresh agent, its next updates must use the loaded moments and step counts."""
    from dpgkit.checkpoint import agent_tensors, load_agent_tensors

    config = dict(actor_hidden=(16, 12), critic_hidden=(16, 12), final_init=0.0, seed=3,
                  actor_lr=1e-2, critic_lr=1e-2, policy_delay=1)
    config = {k: v for k, v in config.items() if preset == "td3" or k != "policy_delay"}
    first, second = batches(3, False), batches(6, False)[3:]
    trained = make_agent(OBS_DIM, ACTION_DIM, preset_config(preset, **config))
    for batch in first:
        trained.update(batch)
    tensors, meta = agent_tensors(trained)
    agents = {fast: make_agent(OBS_DIM, ACTION_DIM,
                               preset_config(preset, **config, fast_update=fast))
              for fast in (True, False)}
    for agent in agents.values():
        load_agent_tensors(agent, {k: v.clone() for k, v in tensors.items()}, meta)
        for batch in second:
            agent.update(batch)
    for name, module in agents[True].modules().items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(value, agents[False].modules()[name].state_dict()[key],
                                       rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")
    step = next(iter(agents[True].critic_optimizer.state.values()))["step"]
    assert float(step) == len(first) + len(second)


def test_parameters_gradients_and_adam_state_are_views_of_one_flat_tensor():
    agent = make_agent(OBS_DIM, ACTION_DIM, preset_config("ddpg", actor_hidden=(16, 12),
                                                          critic_hidden=(16, 12)))
    agent.update(batches(1, False)[0])
    fast = agent.gradient_steps
    online = [*agent.actor.parameters(), *agent.critic.parameters()]
    targets = [*agent.actor_target.parameters(), *agent.critic_target.parameters()]
    for params, flat in ((online, fast.online), (targets, fast.targets)):
        assert sum(p.numel() for p in params) == flat.numel()
        assert all(p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
                   for p in params)
    assert all(p.grad.untyped_storage().data_ptr() == fast.grads.untyped_storage().data_ptr()
               for p in online)
    # the optimiser's own per-parameter state is what the flat kernel writes (where torch has
    # the fused kernel: elsewhere Adam's own step keeps its state, tests/test_torchops.py)
    state = agent.critic_optimizer.state[next(agent.critic.parameters())]
    assert state["exp_avg"].abs().sum() > 0
    if torchops.has("fused_adam"):
        state["exp_avg"].zero_()
        assert fast._steppers[id(agent.critic_optimizer)].exp_avg[
            :state["exp_avg"].numel()].abs().sum() == 0
    # the soft update moves every target parameter, by the rule theta' <- tau theta + (1-tau) theta'
    before = [t.clone() for t in targets]
    agent.update_targets()
    tau = agent.config.tau
    for target, old, source in zip(targets, before, online, strict=True):
        torch.testing.assert_close(target, tau * source + (1 - tau) * old)


def bf16_products(kind: str) -> contextlib.AbstractContextManager:
    """Run bfloat16 products through oneDNN's native kernels ("native": skipped on a CPU without
    them) or through torch's own, which every CPU has ("portable": what such a CPU runs)."""
    if kind == "portable":
        return torchops.disabled("linear_relu_bf16")
    if not torchops.native_bf16():
        pytest.skip("this CPU has no native bfloat16 products (oneDNN needs AVX-512 BF16 or "
                    "AMX); the portable path is tested instead")
    return contextlib.nullcontext()


@pytest.mark.parametrize("kind", ["native", "portable"])
@pytest.mark.parametrize("preset", ["ddpg", "td3"])
def test_bf16_gradients_follow_the_float32_gradients(preset, kind):
    """bf16 rounds the hidden products' operands to 8 significant bits (relative error 2^-9):
    the gradients it stores must be the float32 ones to a few times that, as a relative error of
    the whole tensor (about 1% for the critic, 3% for the actor, whose gradient has come back
    through two networks' bfloat16 layers; a wrong gradient would be off by 100%)."""
    settings = dict(actor_hidden=(64, 48), critic_hidden=(64, 48), final_init=0.0, seed=3,
                    actor_lr=1e-6, critic_lr=1e-6)
    if preset == "td3":
        settings["policy_delay"] = 1
    with bf16_products(kind), pytest.warns() if kind == "portable" else contextlib.nullcontext():
        agents = [make_agent(OBS_DIM, ACTION_DIM, preset_config(preset, **settings, bf16=bf16))
                  for bf16 in (False, True)]
    batch = batches(1, True)[0]
    with bf16_products(kind):
        check_bf16_steps(agents, batch, preset)


def check_bf16_steps(agents: list, batch: Batch, preset: str) -> None:
    for step in ("update_critic", "update_actor"):
        infos = [getattr(agent, step)(batch) for agent in agents]
        for key in infos[0]:
            assert infos[1][key] == pytest.approx(infos[0][key], rel=2e-2, abs=1e-3), key
        networks = ["critic", "critic2"] if step == "update_critic" else ["actor"]
        for name in networks[: 1 + (preset == "td3" and step == "update_critic")]:
            pairs = zip(*(agent.modules()[name].parameters() for agent in agents), strict=True)
            for exact, rounded in pairs:
                assert exact.grad.norm() > 0
                assert (rounded.grad - exact.grad).norm() < 5e-2 * exact.grad.norm()


@pytest.mark.parametrize("kind", ["native", "portable"])
@pytest.mark.filterwarnings("ignore:bf16")
def test_bf16_runs_only_the_hidden_to_hidden_products_in_bfloat16(kind):
    with bf16_products(kind):
        check_bf16_dtypes()


def check_bf16_dtypes() -> None:
    agent = make_agent(OBS_DIM, ACTION_DIM, preset_config(
        "ddpg", actor_hidden=(16, 12, 8), critic_hidden=(16, 12), bf16=True))
    obs = torch.randn(B, OBS_DIM)
    out, inputs = agent.gradient_steps.actor.forward(obs)
    assert [x.dtype for x in inputs] == [torch.float32, torch.bfloat16, torch.bfloat16,
                                         torch.float32]
    assert out.dtype == torch.float32
    q, inputs = agent.gradient_steps.critics[0].forward(obs, torch.zeros(B, ACTION_DIM))
    assert [x.dtype for x in inputs] == [torch.float32, torch.bfloat16, torch.float32]
    assert q.dtype == torch.float32 and agent.act(obs.numpy()).dtype == "float32"
    agent.update(batches(1, False)[0])
    for module in agent.modules().values():
        assert all(p.dtype == torch.float32 for p in module.parameters())
    assert all(p.grad.dtype == torch.float32 for p in agent.actor.parameters())


def test_bf16_on_a_cpu_without_bfloat16_units_warns():
    with torchops.disabled("linear_relu_bf16"), pytest.warns(UserWarning,
                                                             match="no native bfloat16"):
        make_agent(OBS_DIM, ACTION_DIM, preset_config("ddpg", actor_hidden=(8, 8), bf16=True))

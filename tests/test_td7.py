"""TD7's agent: the order inside one update, LAP's priorities, the hard update, the checkpoint
rule on scripted returns, same seed same bits, and the CLI and API on the td7 preset."""

import copy
import json

import numpy as np
import pytest
import torch

import dpgkit
from dpgkit.agents import make_agent
from dpgkit.batch import Batch
from dpgkit.cli import main
from dpgkit.envs import ActionScaler, make_env
from dpgkit.equations import lap_priority
from dpgkit.errors import ConfigError, DpgkitError
from dpgkit.evaluation import evaluate
from dpgkit.lap import LAPReplayBuffer
from dpgkit.presets import preset_config
from dpgkit.td7 import TD7Agent
from dpgkit.td7_config import TD7Config

OBS_DIM, ACTION_DIM, B = 3, 2, 16
TINY = dict(actor_hidden=(16,), critic_hidden=(16,), zs_dim=8, encoder_hidden=16, batch_size=B,
            checkpoint_min_steps=200)  # one Pendulum episode per assessment in these short runs


def tiny_agent(**overrides) -> TD7Agent:
    agent = make_agent(OBS_DIM, ACTION_DIM, preset_config("td7", **{**TINY, **overrides}))
    assert type(agent) is TD7Agent
    return agent


def batch(seed: int = 0, with_replay: TD7Agent | None = None) -> Batch:
    """A random batch; with an agent, drawn from a LAP replay of 64 transitions it owns."""
    g = torch.Generator().manual_seed(seed)
    if with_replay is None:
        return Batch(torch.randn(B, OBS_DIM, generator=g),
                     torch.rand(B, ACTION_DIM, generator=g) * 2 - 1,
                     torch.randn(B, generator=g), torch.randn(B, OBS_DIM, generator=g),
                     torch.zeros(B))
    replay = with_replay.make_replay(1)
    rng = np.random.default_rng(seed)
    for _ in range(64):
        replay.add(rng.standard_normal((1, OBS_DIM)), rng.uniform(-1, 1, (1, ACTION_DIM)),
                   rng.standard_normal(1), rng.standard_normal((1, OBS_DIM)), np.zeros(1),
                   np.zeros(1))
    return replay.sample(B, rng)


def parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return all(x.equal(y) for x, y in zip(a, module.parameters(), strict=True))


def test_the_encoder_loss_moves_the_encoder_only():
    agent = tiny_agent()
    before = {name: parameters(m) for name, m in agent.modules().items()}
    agent.update_encoder(batch())
    for name, module in agent.modules().items():
        assert same(before[name], module) == (name != "encoder"), name
    assert all(p.grad is None for m in (agent.actor, agent.critic, agent.critic2)
               for p in m.parameters())


def test_the_critics_learn_from_the_fixed_encoder_s_embeddings():
    """The online encoder does not enter the critic step: scrambling it changes nothing."""
    a, b = tiny_agent(), tiny_agent()
    with torch.no_grad():
        for p in b.encoder.parameters():
            p.add_(1.0)
    data = batch()
    a.update_critic(data), b.update_critic(data)
    for name in ("critic", "critic2", "fixed_encoder"):
        assert same(parameters(a.modules()[name]), b.modules()[name]), name
    assert a.td_error.shape == (B, 2)


def test_the_actor_step_moves_the_actor_only():
    agent = tiny_agent()
    before = {name: parameters(m) for name, m in agent.modules().items()}
    agent.update_actor(batch())
    for name, module in agent.modules().items():
        assert same(before[name], module) == (name != "actor"), name


def test_the_hard_update_copies_every_target_in_order_and_the_value_range():
    agent = tiny_agent(target_update_every_updates=3)
    data = batch(with_replay=agent)
    initial_fixed = parameters(agent.fixed_encoder)
    for _ in range(2):
        agent.update(data)
        assert agent.value_min_target == agent.value_max_target == 0.0  # y = r until the copy
    assert not same(parameters(agent.actor_target), agent.actor)
    agent.update(data)  # the third: hard update
    for target, online in (("actor_target", "actor"), ("critic_target", "critic"),
                           ("critic2_target", "critic2"), ("fixed_encoder", "encoder")):
        assert same(parameters(agent.modules()[online]), agent.modules()[target]), target
    assert same(initial_fixed, agent.fixed_encoder_target)  # the fixed encoder from before
    assert (agent.value_min_target, agent.value_max_target) == (agent.value_min, agent.value_max)
    assert agent.value_min < agent.value_max
    assert agent.replay.max_priority == agent.replay.tree.max_leaf()


def test_lap_priorities_come_from_the_pre_step_td_errors():
    agent = tiny_agent()
    data = batch(with_replay=agent)
    agent.update_critic(data)
    expected = lap_priority(agent.td_error.numpy(), 0.4, 1.0)
    assert np.allclose(agent.replay.tree.get(data.indices), expected)
    assert isinstance(agent.replay, LAPReplayBuffer)


def test_the_checkpoint_rule_on_scripted_returns():
    agent = tiny_agent(warmup_steps=100, checkpoint_early_episodes=1, checkpoint_late_episodes=3,
                       checkpoint_late_after_updates=0, checkpoint_reset_weight=0.5,
                       checkpoint_min_steps=0)
    assert agent.warming_up(0)
    assert agent.on_episode_end(50, -10.0, env_steps=50) == 0  # warm-up, not counted
    assert agent.on_episode_end(60, -10.0, env_steps=110) == 0  # ends the warm-up
    assert not agent.warming_up(110)
    assert agent.episode_scalars() == {}  # no checkpoint yet: no bar to show
    # the first assessment is one episode long: checkpoint, then a burst of its length
    agent.actor.out.bias.data.fill_(0.25)
    assert agent.on_episode_end(40, -5.0, env_steps=150) == 40
    assert agent.best_min_return == -5.0 and agent.checkpoint_actor.out.bias.eq(0.25).all()
    assert agent.episode_scalars() == {"checkpoint_bar": -5.0}
    agent.update(batch())  # updates == 0 == checkpoint_late_after_updates: reweight, grow
    assert agent.best_min_return == -7.5 and agent.max_assessed_episodes == 3
    agent.actor.out.bias.data.fill_(0.5)
    assert agent.on_episode_end(30, -1.0, env_steps=180) == 0  # assessment goes on
    assert agent.on_episode_end(30, -2.0, env_steps=210) == 0
    assert agent.on_episode_end(30, -8.0, env_steps=240) == 90  # below -7.5: ended early
    assert agent.best_min_return == -7.5 and agent.checkpoint_actor.out.bias.eq(0.25).all()
    for ret, due in ((-1.0, 0), (-2.0, 0), (-2.4, 90)):  # three episodes above -7.5
        assert agent.on_episode_end(30, ret, env_steps=300) == due
    assert agent.best_min_return == -2.4 and agent.checkpoint_actor.out.bias.eq(0.5).all()
    obs = np.ones(OBS_DIM, np.float32)
    assert np.array_equal(agent.deployed_act(obs), agent.deployed_policy()(
        torch.from_numpy(obs)[None]).detach().numpy()[0])


def test_an_assessment_lasts_the_minimum_of_env_steps():
    """Short episodes (40 steps) against a 100-step minimum: three episodes per assessment, and
    the burst is all of their steps."""
    agent = tiny_agent(warmup_steps=0, checkpoint_min_steps=100)
    assert agent.on_episode_end(10, -50.0, env_steps=10) == 0  # ends the warm-up
    assert agent.on_episode_end(40, -2.0, env_steps=50) == 0
    assert agent.on_episode_end(40, -9.0, env_steps=90) == 0
    assert agent.on_episode_end(40, -5.0, env_steps=130) == 120
    assert agent.best_min_return == -9.0
    assert agent.on_episode_end(40, -10.0, env_steps=170) == 40  # below -9: ends at once


def test_without_checkpoints_it_learns_every_step_after_the_warm_up():
    agent = tiny_agent(policy_checkpoints=False, warmup_steps=10)
    assert not agent.learns_every_step(5)
    assert agent.on_episode_end(20, -1.0, env_steps=20) == 0
    assert not agent.learns_every_step(20) and agent.learns_every_step(21)
    assert agent.on_episode_end(20, -1.0, env_steps=40) == 0


def test_td7_refuses_what_it_does_not_support():
    for bad in (dict(actor_hidden=(16, 16)), dict(prioritized=True), dict(actors=2),
                dict(update_at_episode_end=True)):
        with pytest.raises(ConfigError, match="TD7"):
            preset_config("td7", **bad)
    with pytest.raises(ConfigError, match="that is a TD7 setting"):
        preset_config("td3", zs_dim=8)


def run_td7(tmp_path, name: str, **overrides) -> tuple[dict, bytes]:
    config = preset_config("td7", **{**TINY, "total_env_steps": 600, "warmup_steps": 100,
                                     "eval_every_steps": 300, "eval_episodes": 1,
                                     "target_update_every_updates": 50, **overrides})
    summary = dpgkit.train(config, tmp_path / name, progress=False)
    return summary, (tmp_path / name / "metrics.csv").read_bytes()


def tensorboard_scalars(run_dir, key: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(key)]


def test_same_seed_same_bits_and_bursts_at_episode_ends(tmp_path):
    (a, metrics_a), (b, metrics_b) = (run_td7(tmp_path, name, checkpoint_min_steps=400)
                                      for name in "ab")
    assert metrics_a == metrics_b and a["eval_return_mean"] == b["eval_return_mean"]
    assert a["updates"] == 400  # warm-up to 200; one assessment of two episodes, a burst of 400
    # TensorBoard's checkpoint_bar: from the first checkpoint (at 600, after the warm-up's
    # episode and the first policy's two) the worse of that policy's two returns
    returns = [float(row.split(b",")[3]) for row in metrics_a.splitlines()[1:]
               if row.split(b",")[3]]
    bar = tensorboard_scalars(tmp_path / "a", "checkpoint_bar")
    assert bar == [(600, pytest.approx(min(returns[1:]), rel=1e-6))] and len(returns) == 3
    (c, _), = [run_td7(tmp_path, "c", seed=1)]
    assert c["eval_return_mean"] != a["eval_return_mean"]


def test_two_envs_and_no_checkpoints_run(tmp_path):
    summary, _ = run_td7(tmp_path, "two", num_envs=2, policy_checkpoints=False)
    assert summary["env_steps"] == 600 and summary["updates"] > 0


def test_cli_and_api_train_td7(tmp_path):
    assert main(["train", "--preset", "td7", "--steps", "600", "--warmup_steps", "100",
                 "--batch_size", "16", "--actor_hidden", "16", "--critic_hidden", "16",
                 "--zs_dim", "8", "--encoder_hidden", "16", "--eval_every_steps", "600",
                 "--eval_episodes", "1", "--checkpoint_min_steps", "400", "--no-progress",
                 "--out", str(tmp_path / "cli")]) == 0
    config = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert config["algorithm"] == "td7" and config["zs_dim"] == 8
    assert main(["eval", str(tmp_path / "cli"), "--episodes", "1"]) == 0

    model = dpgkit.TD7("Pendulum-v1", run_dir=tmp_path / "api", **TINY, warmup_steps=100,
                       eval_every_steps=600, eval_episodes=1)
    model.learn(total_env_steps=600)
    assert isinstance(model.config, TD7Config) and model.agent.updates == 400
    loaded = dpgkit.load(tmp_path / "api")
    assert type(loaded) is dpgkit.TD7
    obs = np.zeros(3, np.float32)
    assert np.array_equal(loaded.predict(obs)[0], model.predict(obs)[0])
    # the policy file holds TD7's deployed policy: the checkpointed actor and its state encoder
    from_file = dpgkit.load(model.save(tmp_path / "policy"))
    assert type(from_file) is dpgkit.TD7
    many = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    assert np.array_equal(from_file.predict(many)[0], model.predict(many)[0])
    assert not np.array_equal(model.agent.checkpoint_actor.out.weight,  # not the current actor
                              model.agent.actor.out.weight)
    assert type(dpgkit.load(model.save(tmp_path / "whole", whole_run=True))) is dpgkit.TD7
    assert copy.deepcopy(loaded.agent.checkpoint_actor.out.weight).equal(
        model.agent.checkpoint_actor.out.weight)


def test_eval_can_play_the_current_policy_beside_the_checkpointed_one(tmp_path, capsys):
    """``dpgkit eval --policy current`` (and the API's ``policy="current"``) plays the policy
    being trained (the current actor with the fixed encoder), which TD7's checkpointed policy is
    not after a burst; eval.json says which it played; a policy file, which holds the deployed
    policy alone, is refused."""
    run = tmp_path / "run"
    model = dpgkit.TD7("Pendulum-v1", run_dir=run, **TINY, warmup_steps=100,
                       eval_every_steps=600, eval_episodes=1)
    model.learn(total_env_steps=600)  # checkpoint at 600, then a burst of 400 updates
    agent = model.agent
    obs = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    policy, act = agent.chosen_policy("current")
    assert np.array_equal(act(obs), agent.act(obs))
    assert policy.encoder is agent.fixed_encoder and policy.actor is agent.actor
    assert agent.chosen_policy("deployed")[0].actor is agent.checkpoint_actor
    assert not np.array_equal(act(obs), agent.deployed_act(obs))
    with pytest.raises(DpgkitError, match="policy must be one of deployed, current, got 'best'"):
        agent.chosen_policy("best")

    played = {}
    for which in ("deployed", "current"):
        assert main(["eval", str(run), "--episodes", "2", "--policy", which]) == 0
        played[which] = json.loads((run / "eval.json").read_text())
        assert played[which]["policy"] == which
        assert f"│ {which} " in capsys.readouterr().out  # the table's policy column
    env = make_env("Pendulum-v1")
    expected = evaluate(agent.act, env, ActionScaler.for_space(env.action_space), [0, 1])
    env.close()
    np.testing.assert_allclose(played["current"]["returns"], expected, rtol=1e-6)
    assert played["current"]["returns"] != played["deployed"]["returns"]

    # the Python API: predict and evaluate take the same choice
    scaled = ActionScaler.for_space(env.action_space).to_env(agent.act(obs))
    np.testing.assert_array_equal(model.predict(obs, policy="current")[0], scaled)
    np.testing.assert_allclose(model.evaluate(2, policy="current"), expected, rtol=1e-6)
    np.testing.assert_allclose(dpgkit.load(run).evaluate(2, policy="current"), expected,
                               rtol=1e-6)

    path = model.save(tmp_path / "policy")
    assert main(["eval", str(path), "--policy", "current"]) == 2
    assert ("--policy current needs a run or checkpoint directory: a policy file holds only "
            "the deployed policy") in capsys.readouterr().err
    with pytest.raises(DpgkitError, match="a policy file holds only the deployed policy"):
        dpgkit.load(path).predict(obs, policy="current")

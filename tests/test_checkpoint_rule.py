"""benchmarks/checkpoint_rule.py: TD7's checkpoint rule replayed over a run's metrics.csv gives
the checkpoints the agent took (scripted returns, and a real run's TensorBoard checkpoint_bar);
``--policies`` plays both policies of the run's newest checkpoint."""

import pytest
from test_td7 import tensorboard_scalars

import dpgkit
from dpgkit.presets import preset_config

RULE = dict(warmup_steps=100, checkpoint_early_episodes=1, checkpoint_late_episodes=3,
            checkpoint_late_after_updates=0, checkpoint_reset_weight=0.5, checkpoint_min_steps=0)


def test_the_replay_takes_the_checkpoints_of_the_scripted_rule(checkpoint_rule):
    """The sequence of tests/test_td7.py's scripted rule: the warm-up's two episodes, a
    one-episode checkpoint at -5, the reset once an update ran (bar -7.5, three episodes), an
    assessment ended by -8, then three episodes above the bar: checkpoint at their worst."""
    episodes = [(50, 0, -10.0, 50), (110, 0, -10.0, 60), (150, 0, -5.0, 40),
                (180, 40, -1.0, 30), (210, 40, -2.0, 30), (240, 40, -8.0, 30),
                (270, 130, -1.0, 30), (300, 130, -2.0, 30), (330, 130, -2.4, 30)]
    assert checkpoint_rule.replay_checkpoints(RULE, episodes) == [(150, -5.0), (330, -2.4)]
    # before the reset, one episode an assessment: -1.0 (at 180) would have been a checkpoint
    late = {**RULE, "checkpoint_late_after_updates": 1000}
    assert checkpoint_rule.replay_checkpoints(late, episodes)[:2] == [(150, -5.0), (180, -1.0)]


def test_the_replay_finds_the_checkpoints_tensorboard_shows(checkpoint_rule, tmp_path):
    """A short TD7 run, one 200-step Pendulum episode per assessment: each checkpoint the replay
    finds is where TensorBoard's checkpoint_bar first shows or changes, with the same bar."""
    config = preset_config("td7", actor_hidden=(16,), critic_hidden=(16,), zs_dim=8,
                           encoder_hidden=16, batch_size=16, total_env_steps=1500,
                           warmup_steps=100, eval_every_steps=500, eval_episodes=1,
                           checkpoint_min_steps=0)
    dpgkit.train(config, tmp_path / "run", progress=False)
    shown = tensorboard_scalars(tmp_path / "run", "checkpoint_bar")
    changes = [(step, pytest.approx(value, rel=1e-6)) for i, (step, value) in enumerate(shown)
               if i == 0 or value != shown[i - 1][1]]
    run_config, episodes, evaluations = checkpoint_rule.read_run(tmp_path / "run")
    replayed = checkpoint_rule.replay_checkpoints(run_config, episodes)
    assert len(replayed) >= 2 and replayed == changes
    row = checkpoint_rule.run_row(tmp_path / "run")
    assert row.startswith(f"| Pendulum-v1 seed 0 | {len(replayed)} | {replayed[-1][0]:,}: ")
    assert f"at {evaluations[-1][0]:,} |" in row
    # both policies of the newest checkpoint, from the evaluations' start states: the deployed
    # one repeats the run's final evaluation; after the last burst the current one differs
    name, env_steps, returns = checkpoint_rule.final_policies(tmp_path / "run")
    assert (name, env_steps) == ("Pendulum-v1 seed 0", 1500)
    assert returns["deployed"] == [pytest.approx(evaluations[-1][1], rel=1e-9)]
    assert returns["current"] != returns["deployed"]
    table = checkpoint_rule.policies_report([tmp_path / "run"]).splitlines()
    assert table[0] == ("| run | newest checkpoint | deployed policy | current policy | "
                        "current - deployed |")
    assert table[2].startswith(f"| Pendulum-v1 seed 0 | 1,500 | {evaluations[-1][1]:.0f} +- 0 | ")
    gap = returns["current"][0] - returns["deployed"][0]
    assert table[3].startswith("| mean of the 1 runs | | ")
    assert table[3].endswith(f" | {gap:+.0f} |")


def test_a_run_without_policy_checkpoints_is_refused_by_name(checkpoint_rule, tmp_path):
    config = preset_config("ddpg", actor_hidden=(8,), critic_hidden=(8,), batch_size=16,
                           total_env_steps=300, warmup_steps=100, eval_every_steps=300,
                           eval_episodes=1)
    dpgkit.train(config, tmp_path / "ddpg", progress=False)
    with pytest.raises(SystemExit, match="not a TD7 run with policy checkpoints"):
        checkpoint_rule.read_run(tmp_path / "ddpg")
    with pytest.raises(SystemExit, match="not a run directory"):
        checkpoint_rule.read_run(tmp_path)

"""The training loop: what it stores, when it updates, and that a seed fixes every bit."""

import dataclasses
import warnings

import numpy as np
import pytest
import safetensors.torch

import dpgkit
from dpgkit.acting import warn_if_all_warmup
from dpgkit.checkpoint import find_checkpoint as newest
from dpgkit.cli import main
from dpgkit.errors import ConfigError, DpgkitWarning
from dpgkit.presets import preset_config
from dpgkit.train import Trainer, train

# tests/toy_envs.py: truncated at 5 steps; odd episodes terminate at step 3
COUNTING = "dpgkit-test/Counting-v0"


def counting_trainer(tmp_path, **overrides) -> Trainer:
    settings = dict(env_id=COUNTING, actor_hidden=(8,), critic_hidden=(8,), batch_size=4,
                    warmup_steps=6, total_env_steps=1000, eval_every_steps=1000, eval_episodes=1)
    config = preset_config("ddpg", **{**settings, **overrides})
    return Trainer(config, tmp_path / "run")


def test_episode_ends_store_the_true_final_obs_and_only_termination_cuts_bootstrap(tmp_path):
    trainer = counting_trainer(tmp_path)
    for _ in range(13):  # episode 0: 5 steps, truncated; 1: 3 steps, terminated; 2: 5, truncated
        trainer.step()
    replay = trainer.replay
    stored = replay.transitions()
    episode = [0] * 5 + [1] * 3 + [2] * 5
    step = [1, 2, 3, 4, 5, 1, 2, 3, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(stored["obs"], np.c_[episode, np.subtract(step, 1)])
    np.testing.assert_array_equal(stored["next_obs"], np.c_[episode, step])
    np.testing.assert_array_equal(stored["reward"], step)
    terminated = np.zeros(13, bool)
    terminated[7] = True
    truncated = np.zeros(13, bool)
    truncated[[4, 12]] = True
    np.testing.assert_array_equal(stored["terminated"], terminated)
    np.testing.assert_array_equal(stored["truncated"], truncated)
    # a truncated transition keeps terminated = 0, so its TD target still bootstraps
    rows = np.flatnonzero(replay.valid)
    assert replay.gather(rows[[4, 7]]).terminated.tolist() == [0.0, 1.0]


def test_actions_are_stored_in_unit_range_and_rescaled_at_the_env_edge(tmp_path):
    trainer = counting_trainer(tmp_path, warmup_steps=0, gaussian_sigma=5.0)
    for _ in range(40):
        trainer.step()
    env = trainer.envs.envs[0].unwrapped
    stored = trainer.replay.transitions()["action"][:40]
    assert np.all(np.abs(stored) <= 1)
    sent = np.array(env.actions)
    low, high = np.array([-1.0, 0.0]), np.array([3.0, 2.0])
    np.testing.assert_allclose(sent, low + (stored + 1) * (high - low) / 2, rtol=1e-6)
    assert np.any(stored == 1.0) and np.any(stored == -1.0), "sigma 5 noise must be clipped"


def test_warmup_acts_uniformly_and_makes_no_update(tmp_path):
    trainer = counting_trainer(tmp_path, warmup_steps=50)
    for _ in range(50):
        trainer.step()
    assert trainer.agent.updates == 0
    actions = trainer.replay.transitions()["action"][:50]
    assert actions.min() < -0.8 and actions.max() > 0.8 and abs(actions.mean()) < 0.2
    trainer.step()
    assert trainer.agent.updates == 1


def test_update_during_warmup_starts_at_the_first_full_batch(tmp_path):
    trainer = counting_trainer(tmp_path, warmup_steps=50, batch_size=4,
                               update_during_warmup=True)
    for _ in range(3):
        trainer.step()
    assert trainer.agent.updates == 0
    trainer.step()
    assert trainer.agent.updates == 1  # 4 transitions stored: one update per step from here
    for _ in range(46):
        trainer.step()
    assert trainer.agent.updates == 47
    actions = trainer.replay.transitions()["action"][:50]
    assert actions.min() < -0.8 and actions.max() > 0.8 and abs(actions.mean()) < 0.2


@pytest.mark.parametrize("during_warmup, updates_per_step, expected", [
    # episodes of 5, 3, 5 steps end at env steps 5, 8, 13; the warm-up is the first 6 steps
    (True, 1.0, [0] * 4 + [5] * 3 + [8] * 5 + [13] * 3),  # the first (warm-up) one too
    (False, 1.0, [0] * 7 + [3] * 5 + [8] * 3),            # from the second one on
    (False, 2.0, [0] * 7 + [6] * 5 + [16] * 3),
])
def test_update_at_episode_end_bursts_one_update_per_step_of_the_episode(
        tmp_path, during_warmup, updates_per_step, expected):
    """The TD3 authors' 2018 schedule: no update after an env step, updates_per_step times the
    episode's length at its end (warm-up episodes too with update_during_warmup)."""
    trainer = counting_trainer(tmp_path, batch_size=4, update_at_episode_end=True,
                               update_during_warmup=during_warmup,
                               updates_per_step=updates_per_step)
    updates = []
    for _ in range(15):
        trainer.step()
        updates.append(trainer.agent.updates)
    assert updates == expected


def test_update_at_episode_end_refuses_distributed_actors():
    with pytest.raises(ConfigError, match="update_at_episode_end needs the learner's own"):
        preset_config("td3", update_at_episode_end=True, actors=2)


@pytest.mark.parametrize("batch_size, updates_per_step", [(4, 1.0), (7, 0.5), (5, 2.0)])
def test_batch_size_and_update_ratio_take_effect(tmp_path, batch_size, updates_per_step):
    trainer = counting_trainer(tmp_path, batch_size=batch_size, updates_per_step=updates_per_step)
    sizes = []
    update = trainer.agent.update
    trainer.agent.update = lambda batch: sizes.append(len(batch.reward)) or update(batch)
    for _ in range(26):
        trainer.step()
    assert set(sizes) == {batch_size}
    assert len(sizes) == int((26 - 6) * updates_per_step)


def test_ou_noise_restarts_at_each_episode_start(tmp_path):
    trainer = counting_trainer(tmp_path, warmup_steps=0, exploration_noise="ou", ou_mu=0.0)
    for _ in range(4):
        trainer.step()
    assert np.all(trainer.acting.noise.x != 0.0)
    trainer.step()  # the 5th step truncates episode 0
    assert np.all(trainer.acting.noise.x == 0.0)


def test_same_seed_gives_identical_bits(tmp_path, tiny_config):
    runs = [tmp_path / "a", tmp_path / "b"]
    summaries = [train(tiny_config, run, progress=False) for run in runs]
    a, b = (safetensors.torch.load_file(str(newest(r) / "agent.safetensors")) for r in runs)
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert (runs[0] / "metrics.csv").read_bytes() == (runs[1] / "metrics.csv").read_bytes()
    drop = ("wall_seconds", "steps_per_second")
    assert ({k: v for k, v in summaries[0].items() if k not in drop}
            == {k: v for k, v in summaries[1].items() if k not in drop})
    other = train(dataclasses.replace(tiny_config, seed=1), tmp_path / "c", progress=False)
    assert other["eval_return_mean"] != summaries[0]["eval_return_mean"]


def test_prioritized_n_step_training_updates_priorities_from_td_errors(tmp_path):
    trainer = counting_trainer(tmp_path, prioritized=True, n_step=2, warmup_steps=4)
    for _ in range(30):
        trainer.step()
    replay = trainer.replay
    leaves = replay.tree.get(np.flatnonzero(replay.valid))
    assert trainer.agent.updates == 26
    assert len(np.unique(leaves)) > 10  # priorities now follow each transition's |TD error|
    assert replay.beta > trainer.config.priority_beta  # annealed towards priority_beta_end


@pytest.mark.parametrize("flush", [True, False])
def test_flush_denormal_sets_the_cpu_to_flush_subnormals(tmp_path, flush):
    import torch

    try:
        counting_trainer(tmp_path, flush_denormal=flush)
        subnormal = torch.tensor([1e-39]).mul(1.0).item()
        assert (subnormal == 0.0) is flush
    finally:
        torch.set_flush_denormal(True)  # the setting every Trainer of this suite makes


def test_a_budget_that_is_all_warm_up_is_warned_about_at_the_start(tmp_path, capsys):
    """td7's preset (25,000 warm-up steps, no updates in them) on the default 20,000-step budget
    would act at random throughout: the run says so in its first line, and how to fix it; a
    warm-up shorter than the budget, or updates during it, say nothing."""
    with pytest.warns(DpgkitWarning, match=r"warmup_steps \(25000\) is not below total_env_steps"
                                           r" \(20000\).*--steps.*--warmup_steps"):
        assert warn_if_all_warmup(preset_config("td7"))
    assert not warn_if_all_warmup(preset_config("td7", total_env_steps=30_000))
    assert not warn_if_all_warmup(preset_config("td3", total_env_steps=500))  # updates in it
    assert main(["train", "--preset", "our-ddpg", "--steps", "300", "--warmup_steps", "300",
                 "--actor_hidden", "8", "--critic_hidden", "8", "--eval_episodes", "1",
                 "--no-progress", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "dpgkit: warning: warmup_steps (300) is not below total_env_steps (300)" in err
    # the Python API's budget grows with each learn (SB3's loop of chunks): no warning there
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "api", warmup_steps=100,
                        actor_hidden=(8,), critic_hidden=(8,), eval_episodes=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DpgkitWarning)
        model.learn(total_timesteps=100)

"""Stable-Baselines3's names, and what to write in dpgkit instead.

Where dpgkit does the same thing under the same name (``seed``, ``gamma``, ``tau``,
``batch_size``, ``policy_delay``, ``target_noise_clip``, ``learn(total_timesteps=...)``,
``predict(obs, deterministic=True)``, ``DDPG.load``), it takes it. Where it does not, the name
is refused with one line saying what to write (docs/api.md, "Coming from Stable-Baselines3").
"""

from typing import Any, NamedTuple

import numpy as np

from dpgkit.errors import DpgkitError

POLICY_NAMES = ("MlpPolicy", "CnnPolicy", "MultiInputPolicy")

SIZES = "actor_hidden=(400, 300), critic_hidden=(400, 300)"

SETTINGS = {
    "policy": f"dpgkit takes no policy: its actor and critic are MLPs, sized with {SIZES}",
    "policy_kwargs": f"give the network sizes as settings: {SIZES} (net_arch's sizes)",
    "learning_rate": "actor_lr= and critic_lr= (one each)",
    "buffer_size": "replay_size=",
    "learning_starts": "warmup_steps= (random actions until then; "
                       "update_during_warmup=True also updates during them)",
    "train_freq": "dpgkit updates after every env step: updates_per_step= sets how many",
    "gradient_steps": "updates_per_step= (updates per env step, fractions allowed)",
    "action_noise": "exploration_noise='gaussian', gaussian_sigma=0.1 (or exploration_noise="
                    "'ou', ou_sigma=0.2, ou_theta=0.15), in units of the [-1, 1] action range as "
                    "in Stable-Baselines3",
    "replay_buffer_class": "prioritized=True for prioritized replay, n_step=3 for n-step returns",
    "replay_buffer_kwargs": "prioritized=True, priority_alpha=, priority_beta=, n_step=",
    "optimize_memory_usage": "dpgkit stores every observation once already: leave it out",
    "target_policy_noise": "target_noise=",
    "tensorboard_log": "run_dir= (TensorBoard events go into the run directory)",
    "verbose": "leave it out: learn prints nothing; metrics.csv and TensorBoard in the run "
               "directory record every episode and evaluation",
    "device": "leave it out: dpgkit runs on the CPU",
    "stats_window_size": "leave it out: metrics.csv records every episode",
    "_init_setup_model": "leave it out",
}

LEARN = {
    "log_interval": "leave it out: metrics.csv and TensorBoard record every episode",
    "tb_log_name": "give run_dir= when you make the model (TensorBoard events go there)",
    "progress_bar": "leave it out, or train with the command line (dpgkit train shows one)",
}

LOAD = {
    "device": "leave it out: dpgkit runs on the CPU",
    "custom_objects": "leave it out: a dpgkit file holds no Python objects",
    "print_system_info": "leave it out: policy.json in the file lists the library versions",
    "force_reset": "leave it out",
}

EVALUATE = {
    "return_episode_rewards": "model.evaluate(n, env=env) returns every episode's return",
    "render": "dpgkit eval RUN --render shows the episodes in a window",
    "callback": "leave it out",
    "reward_threshold": "compare the mean yourself",
    "warn": "leave it out",
}

ATTRIBUTES = {
    "get_env": "dpgkit keeps no env for you: make one with gym.make and step it with "
               "Gymnasium's API; model.evaluate(env=env) plays whole episodes",
    "set_env": "pass the env where it is used: DDPG.resume(RUN_DIR, env=...), "
               "dpgkit.load(path, env=...), model.evaluate(env=...)",
    "save_replay_buffer": "model.save(path, whole_run=True) writes the whole run, replay "
                          "included",
    "load_replay_buffer": "dpgkit.DDPG.resume(RUN_DIR) continues a run with its replay",
    "replay_buffer": "model.trainer.replay",
    "policy": "model.agent: its actor (mu) and critic (Q) networks",
    "actor": "model.agent.actor",
    "critic": "model.agent.critic",
    "num_timesteps": "model.env_steps",
}

DOCS = "(docs/api.md, 'Coming from Stable-Baselines3')"

UNPACK = ("predict returns the pair (action, state), as Stable-Baselines3's does: write "
          "action, _ = model.predict(obs)")


class Prediction(NamedTuple):
    """What ``predict`` returns: the action and the recurrent state, which is always None (the
    pair Stable-Baselines3's ``predict`` returns). Used whole as an array, for example
    ``env.step(model.predict(obs))``, it raises an error that says to unpack it."""

    action: np.ndarray
    state: None

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise DpgkitError(UNPACK)

    def __getattr__(self, name: str) -> Any:
        if hasattr(np.ndarray, name):
            raise AttributeError(f"{UNPACK} (.{name} is an array's)")
        raise AttributeError(name)


def check_settings(cls_name: str, env: Any, preset: Any, settings: dict[str, Any]) -> None:
    """Refuse a policy name in the env's place (``DDPG("MlpPolicy", env)``, or with ``env=``)
    and Stable-Baselines3's constructor keywords."""
    if "env" in settings and env is not None and not (
            isinstance(env, str) and env.endswith("Policy")):
        raise DpgkitError(f"dpgkit.{cls_name}() got the environment twice: give it once, first")
    if isinstance(env, str) and (env in POLICY_NAMES or env.endswith("Policy")):
        raise DpgkitError(f"dpgkit.{cls_name} takes the environment first and no policy name: "
                          f"write dpgkit.{cls_name}(env) instead of {cls_name}({env!r}, env); "
                          f"its actor and critic are MLPs, sized with {SIZES} (what "
                          f"policy_kwargs=dict(net_arch=...) sets in Stable-Baselines3) {DOCS}")
    if preset is not None and not isinstance(preset, str):
        raise DpgkitError(f"dpgkit.{cls_name}'s second argument is a preset name such as "
                          f"'td3', got {type(preset).__name__}: give the environment first, as "
                          f"in dpgkit.{cls_name}(env)")
    _refuse(f"dpgkit.{cls_name}()", settings, SETTINGS, others_too=False)


def check_learn(settings: dict[str, Any]) -> None:
    """Refuse Stable-Baselines3's ``learn`` keywords that dpgkit has not."""
    _refuse("learn()", settings, LEARN)


def check_load(settings: dict[str, Any]) -> None:
    """Refuse Stable-Baselines3's ``load`` keywords that dpgkit has not."""
    _refuse("load()", settings, LOAD)


def evaluate_policy(model: Any, env: Any, n_eval_episodes: int = 10, deterministic: bool = True,
                    **sb3_settings: Any) -> tuple[float, float]:
    """Stable-Baselines3's ``evaluate_policy`` for a dpgkit model: the mean and standard
    deviation of the returns of ``n_eval_episodes`` episodes on ``env`` without noise (episode k
    from ``env.reset(seed=k)``): ``model.evaluate(n_eval_episodes, env=env)``, summarised."""
    _refuse("evaluate_policy()", sb3_settings, EVALUATE)
    returns = model.evaluate(n_eval_episodes, env=env)
    return float(returns.mean()), float(returns.std())


def attribute_error(cls_name: str, name: str) -> AttributeError:
    """The error for ``model.<name>``: what to use instead, for Stable-Baselines3's names."""
    if name in ATTRIBUTES:
        return AttributeError(f"dpgkit.{cls_name} has no {name} (a Stable-Baselines3 name): "
                              f"{ATTRIBUTES[name]} {DOCS}")
    return AttributeError(f"'{cls_name}' object has no attribute '{name}'")


def _refuse(call: str, given: dict[str, Any], known: dict[str, str], others_too: bool = True
            ) -> None:
    """A DpgkitError for the first of ``given`` that ``known`` explains, else (``others_too``)
    for any name given at all."""
    for name in given:
        if name in known:
            raise DpgkitError(f"{call} takes no {name} (a Stable-Baselines3 keyword): "
                              f"{known[name]} {DOCS}")
    if given and others_too:
        raise DpgkitError(f"{call} takes no {', '.join(sorted(given))}: docs/api.md lists what "
                          "it takes")

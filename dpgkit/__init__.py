"""dpgkit: deterministic policy-gradient reinforcement learning (DDPG, TD3), read like the math.

The Python API (see ``dpgkit.api``)::

    import dpgkit
    agent = dpgkit.DDPG("Pendulum-v1", seed=0)
    agent.learn(total_env_steps=20_000)
    agent.predict(obs)
"""

from dpgkit.api import DDPG, TD3, load
from dpgkit.config import DDPGConfig, TD3Config
from dpgkit.presets import PRESETS, preset_config
from dpgkit.train import train
from dpgkit.version import __version__

__all__ = ["DDPG", "TD3", "load", "train", "DDPGConfig", "TD3Config", "PRESETS", "preset_config",
           "__version__"]

"""dpgkit: deterministic policy-gradient RL (DDPG, TD3, TD7), read like the math.

The Python API (see ``dpgkit.api``)::

    import dpgkit
    agent = dpgkit.DDPG("Pendulum-v1", seed=0)
    agent.learn(total_env_steps=20_000)
    agent.predict(obs)
"""

from dpgkit.api import DDPG, TD3, TD7, load
from dpgkit.config import DDPGConfig, TD3Config, TD7Config
from dpgkit.presets import PRESETS, preset_config
from dpgkit.train import train
from dpgkit.version import __version__

__all__ = ["DDPG", "TD3", "TD7", "load", "train", "DDPGConfig", "TD3Config", "TD7Config",
           "PRESETS", "preset_config", "__version__"]

"""dpgkit: deterministic policy-gradient reinforcement learning (DDPG, TD3), read like the math.

The Python API (see ``dpgkit.api``)::

    import dpgkit
    agent = dpgkit.DDPG("Pendulum-v1", seed=0)
    agent.learn(total_env_steps=20_000)
    agent.predict(obs)
"""

__version__ = "0.1.0"

from dpgkit.api import DDPG, TD3, load  # noqa: E402
from dpgkit.config import PRESETS, DDPGConfig, TD3Config, preset_config  # noqa: E402
from dpgkit.train import train  # noqa: E402

__all__ = ["DDPG", "TD3", "load", "train", "DDPGConfig", "TD3Config", "PRESETS", "preset_config",
           "__version__"]

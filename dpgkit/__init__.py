"""dpgkit: deterministic policy-gradient RL (DDPG, TD3, TD7), read like the math.

The Python API (see ``dpgkit.api``)::

    import dpgkit
    agent = dpgkit.DDPG("Pendulum-v1", seed=0)
    agent.learn(total_env_steps=20_000)
    agent.predict(obs)
"""

from dpgkit.entry_path import drop_current_directory

drop_current_directory()  # first: under python -m, the current directory is not importable

from dpgkit.api import DDPG, TD3, TD7, load  # noqa: E402
from dpgkit.config import DDPGConfig, TD3Config  # noqa: E402
from dpgkit.presets import PRESETS, preset_config  # noqa: E402
from dpgkit.td7_config import TD7Config  # noqa: E402
from dpgkit.train import train  # noqa: E402
from dpgkit.version import __version__  # noqa: E402

__all__ = ["DDPG", "TD3", "TD7", "load", "train", "DDPGConfig", "TD3Config", "TD7Config",
           "PRESETS", "preset_config", "__version__"]

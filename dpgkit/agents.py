"""The agent of a config: one factory for every algorithm.

Each algorithm's agent is a class of its own module (:class:`~dpgkit.agent.DDPGAgent`,
:class:`~dpgkit.td3.TD3Agent`, :class:`~dpgkit.td7.TD7Agent`); :data:`AGENT_CLASSES` maps the
config's ``algorithm`` to it. A new algorithm adds its class here (see docs/developer.md).
"""

from dpgkit.agent import DDPGAgent
from dpgkit.config import DDPGConfig
from dpgkit.errors import memory_for
from dpgkit.networks import mlp_parameters
from dpgkit.td3 import TD3Agent
from dpgkit.td7 import TD7Agent

AGENT_CLASSES: dict[str, type[DDPGAgent]] = {"ddpg": DDPGAgent, "td3": TD3Agent,
                                             "td7": TD7Agent}
"""The agent class of each ``config.algorithm``."""


def agent_class(config: DDPGConfig) -> type[DDPGAgent]:
    """The agent class of ``config``'s algorithm; for a config class of a user's that names an
    algorithm without an agent here, that of the nearest config class it derives from."""
    for cls in type(config).__mro__:
        if cls.__dict__.get("algorithm") in AGENT_CLASSES:
            return AGENT_CLASSES[cls.__dict__["algorithm"]]
    raise TypeError(f"{type(config).__name__} is not a DDPGConfig")


def make_agent(obs_dim: int, action_dim: int, config: DDPGConfig) -> DDPGAgent:
    """The agent of ``config``'s algorithm (:func:`agent_class`). Networks too large for this
    machine's memory are a ConfigError, as a too large replay is."""
    params = mlp_parameters([obs_dim, *config.actor_hidden, action_dim]) + 2 * mlp_parameters(
        [obs_dim + action_dim, *config.critic_hidden, 1])
    # online and target copies, gradients and Adam's two moments: about 5 float32 per parameter
    with memory_for(f"an agent of {params:,} network parameters", 20.0 * params,
                    "lower --actor_hidden and --critic_hidden"):
        return agent_class(config)(obs_dim, action_dim, config)

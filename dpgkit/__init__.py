"""dpgkit: deterministic policy-gradient reinforcement learning (DDPG) that reads like the math."""

__version__ = "0.1.0"

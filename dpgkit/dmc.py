"""DeepMind Control Suite tasks through shimmy: their ids registered when a run names one.

shimmy registers ``dm_control/<domain>-<task>-v0`` (``dm_control/cartpole-swingup-v0``) with
Gymnasium when it is imported, which a command-line user cannot do: :func:`register_namespace`
imports it for them, from :func:`dpgkit.envs.make_env`. The tasks observe a Dict of Boxes, which
:mod:`dpgkit.obs_layout` flattens, and end their 1000-step episodes themselves. The suite's
models ship inside the dm_control package: nothing is downloaded when a task is made.
``pip install 'dpgkit[dmc]'`` installs both packages.
"""

import warnings

import gymnasium as gym

from dpgkit.errors import EnvError

NAMESPACE = "dm_control/"


def register_namespace(env_id: str) -> None:
    """Register the ids of ``env_id``'s namespace where a package does it on import: shimmy's
    ``dm_control/...`` (the DeepMind Control Suite; ``pip install 'dpgkit[dmc]'``)."""
    if not env_id.startswith(NAMESPACE) or env_id in gym.registry:
        return
    try:
        with warnings.catch_warnings():  # dm_control's window toolkit: "DISPLAY is missing"
            warnings.simplefilter("ignore")
            import shimmy  # noqa: F401  (registers dm_control/<domain>-<task>-v0)
    except ImportError as error:
        raise EnvError(f"environment {env_id!r} is a DeepMind Control Suite task, which needs "
                       f"shimmy and dm_control ({error}): pip install 'dpgkit[dmc]'") from None

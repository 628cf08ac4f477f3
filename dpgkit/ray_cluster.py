"""Ray for distributed training: importing it with a clear error, starting a local Ray on
loopback in a short temporary directory, or joining a cluster (docs/distributed.md)."""

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from dpgkit.config import DDPGConfig
from dpgkit.errors import DpgkitError


def import_ray(local: bool = True) -> Any:
    """The ``ray`` module, or a DpgkitError that says how to install it.

    ``local``: Ray will start here, not join a cluster. Ray then picks loopback as this node's
    address (and binds its servers to it) rather than the network interface, if it is imported
    for the first time now (the variable is read at import, and by Ray's child processes).
    Token authentication is asked for explicitly (Ray 2.60 turns it on for a new local Ray
    anyway, with a warning); a user's own RAY_AUTH_MODE wins. A cluster sets its own.
    """
    if local:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise DpgkitError("--actors needs Ray, which is not installed: "
                          "pip install 'dpgkit[distributed]'") from None
    return ray


def start_ray(config: DDPGConfig) -> Path | None:
    """Join the cluster at ``config.ray_address``, or start a local Ray on loopback with its
    temporary files in a new short temp dir (sockets must fit in 107 characters); return that
    dir, to delete at the end. Nothing happens if Ray is already running in this process (a
    test's or a notebook's): returns None."""
    ray = import_ray(local=not config.ray_address)
    if ray.is_initialized():
        return None
    if config.ray_address:
        try:
            ray.init(address=config.ray_address, logging_level="warning")
        except ConnectionError as error:
            raise DpgkitError(f"cannot join the Ray cluster at {config.ray_address!r} "
                              f"({str(error).strip().splitlines()[0][:200]}): start it with "
                              "ray start --head (docs/distributed.md), or drop --ray-address "
                              "for a local Ray") from None
        return None
    temp_dir = Path(tempfile.mkdtemp(prefix="dpgkit-ray-"))
    cpus = max(os.cpu_count() or 1, math.ceil(config.actors * config.actor_cpus))
    ray.init(num_cpus=cpus, include_dashboard=False, _temp_dir=str(temp_dir),
             logging_level="warning")
    return temp_dir

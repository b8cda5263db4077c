"""Connecting this process to a Ray cluster as a driver, and starting Serve on it."""

from __future__ import annotations

import logging
from typing import Any

from shipyard.errors import DeploymentError, MissingDependencyError

__all__ = ["connect", "disconnect", "ensure_serve", "import_ray"]

_connected: str | None = None
#: The proxy's (host, port) once Serve was started (or found) by this driver.
_serve: tuple[str, int] | None = None


def import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise MissingDependencyError("ray", "ray", "the ray model deployer") from err
    return ray


def connect(address: str) -> None:
    """Be a driver of the cluster at ``address`` (``host:port``, ``ray://...`` or ``auto``)."""
    global _connected
    ray = import_ray()
    if ray.is_initialized():
        if _connected == address:
            return
        disconnect()
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    if host.startswith("127.") or host == "localhost":
        # Ray would swap loopback for the machine's outward address and then find no
        # node there (see _node.py): a cluster on loopback is reached on loopback.
        import os

        import ray._private.ray_constants as constants

        constants.ENABLE_RAY_CLUSTER = False
        # As the loopback clusters Shipyard starts (see _cluster._auth_env).
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        ray.init(
            address=address,
            namespace="shipyard",
            logging_level=logging.WARNING,
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise DeploymentError(
            f"Cannot connect to the Ray cluster at '{address}': {err}. Start one (`ray start "
            "--head`), give its address (`--address=host:6379` or `ray://host:10001`), or "
            "use `address=local` to let Shipyard start a head of its own."
        ) from err
    _connected = address


def ensure_serve(host: str, port: int, proxy_location: str) -> tuple[str, int]:
    """Start Serve if it is not running; (host, port) of its HTTP proxy either way."""
    global _serve
    if _serve is not None:
        return _serve
    from ray import serve
    from ray.serve.context import _get_global_client

    serve.start(
        http_options={"host": host, "port": port},
        proxy_location=proxy_location,
    )
    config = _get_global_client().http_config
    # A proxy listening on all interfaces is reached on loopback from this machine.
    shown = "127.0.0.1" if config.host in ("0.0.0.0", "") else str(config.host)
    _serve = (shown, int(config.port))
    return _serve


def disconnect() -> None:
    """Stop being a driver (before the cluster this process is connected to goes away)."""
    global _connected, _serve
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    _connected = None
    _serve = None

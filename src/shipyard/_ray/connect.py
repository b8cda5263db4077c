"""Connecting this process to a Ray cluster as a driver, and starting Serve on it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shipyard.errors import DeploymentError, MissingDependencyError

__all__ = [
    "GRPC_SERVICER",
    "ServeProxies",
    "connect",
    "disconnect",
    "end_driver_process",
    "ensure_serve",
    "import_ray",
]

_connected: str | None = None
#: The proxy's (host, port) once Serve was started (or found) by this driver.
_serve: ServeProxies | None = None


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
        # node there (see deployers/ray/_node.py): a cluster on loopback is reached on loopback.
        import os

        import ray._private.ray_constants as constants

        constants.ENABLE_RAY_CLUSTER = False
        # As the loopback clusters Shipyard starts (see deployers/ray/_cluster._auth_env).
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


#: What Serve's gRPC proxy registers to speak the Open Inference Protocol: the import path
#: of the generated ``add_..._to_server`` function (the proxy imports it on its node).
GRPC_SERVICER = (
    "shipyard.serving.grpc._generated.grpc_predict_v2_pb2_grpc."
    "add_GRPCInferenceServiceServicer_to_server"
)


@dataclass(frozen=True)
class ServeProxies:
    """Where Serve's proxies listen, as this machine reaches them."""

    host: str
    http_port: int
    grpc_port: int | None
    """None when Serve's gRPC proxy is off or does not carry our service."""


def ensure_serve(
    host: str, port: int, proxy_location: str, grpc_port: int | None = None
) -> ServeProxies:
    """Start Serve if it is not running (with the gRPC proxy on ``grpc_port`` if given);
    where its proxies listen either way.

    Serve's gRPC servicers are fixed when Serve starts: on a Serve that someone else
    started without ours, there is no gRPC (``grpc_port`` None in the answer).
    """
    global _serve
    if _serve is not None:
        return _serve
    import ray
    from ray import serve
    from ray.serve.context import _get_global_client

    grpc_options = (
        None
        if grpc_port is None
        else {"port": grpc_port, "grpc_servicer_functions": [GRPC_SERVICER]}
    )
    serve.start(
        http_options={"host": host, "port": port},
        proxy_location=proxy_location,
        grpc_options=grpc_options,
    )
    client = _get_global_client()
    config = client.http_config
    grpc_config = ray.get(client._controller.get_grpc_config.remote())
    served = grpc_config.port > 0 and GRPC_SERVICER in grpc_config.grpc_servicer_functions
    # A proxy listening on all interfaces is reached on loopback from this machine.
    shown = "127.0.0.1" if config.host in ("0.0.0.0", "") else str(config.host)
    _serve = ServeProxies(shown, int(config.port), int(grpc_config.port) if served else None)
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


def end_driver_process(code: object) -> None:
    """End this process now with ``code`` (a ``SystemExit`` code) if it is a Ray driver;
    return if it is not.

    For a command that ran to its end (``shipyard batch predict --engine ray``): once the
    work is written and reported, Ray's own exit handler and the interpreter's teardown of
    Ray's modules took 1-2 s more on a 2-core machine (measured: about as long as the
    driver's connect and an actor's start together). The driver leaves the cluster
    first (``disconnect``), as a normal exit would; only the teardown is skipped.
    """
    if _connected is None:
        return
    import os
    import sys

    if isinstance(code, str):  # as ``sys.exit("message")`` does
        sys.stderr.write(code + "\n")
        code = 1
    try:
        disconnect()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 0)

"""Start and stop the gRPC Open Inference Protocol server inside a worker's event loop.

grpc.aio runs on whatever loop is current, uvloop included, so the servicer awaits the
data plane directly: no thread hop per request. Worker processes share one port
through SO_REUSEPORT and the kernel spreads connections across them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
import grpc.aio

from shipyard.errors import ServiceError
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.serving.grpc._servicer import DataPlaneLike, InferenceServicer

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "GrpcServerHandle", "start_grpc_server"]

_log = logging.getLogger(__name__)

#: 100 MB, the same limit as the REST body size.
DEFAULT_MAX_MESSAGE_BYTES = 100 * 1024 * 1024


@dataclass(slots=True)
class GrpcServerHandle:
    """A running gRPC server: the port it bound, and how to stop it."""

    port: int
    _server: grpc.aio.Server

    async def stop(self, grace: float) -> None:
        """Refuse new calls, let calls in flight finish for up to ``grace`` seconds."""
        await self._server.stop(grace)


def _address(host: str, port: int) -> str:
    # An IPv6 literal needs brackets to be told apart from the port.
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


async def start_grpc_server(
    dataplane: DataPlaneLike,
    host: str,
    port: int,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> GrpcServerHandle:
    """Serve ``inference.GRPCInferenceService`` for ``dataplane`` on ``host:port``.

    Call it from the event loop that runs the data plane. ``port`` 0 picks a free port
    (see ``.port``); a busy port raises ``ServiceError``. Messages larger than
    ``max_message_bytes`` are refused with RESOURCE_EXHAUSTED.
    """
    options = [
        # Several worker processes bind the same port; the kernel balances connections.
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    server = grpc.aio.server(options=options)
    # The generated registration is untyped (protoc writes no .pyi for services).
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        InferenceServicer(dataplane), server
    )
    address = _address(host, port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as err:
        raise ServiceError(
            f"The gRPC server could not bind {address} ({err}); the port is probably in use "
            "by another program: pick a free one with --grpc-port, or 0 for any."
        ) from err
    if bound == 0:
        raise ServiceError(
            f"The gRPC server could not bind {address}; the port is probably in use by "
            "another program: pick a free one with --grpc-port, or 0 for any."
        )
    await server.start()
    _log.info("gRPC Open Inference Protocol server listening on %s", _address(host, bound))
    return GrpcServerHandle(port=bound, _server=server)

"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``).

``start_grpc_server(dataplane, host, port)`` runs it in the current event loop. grpc is
imported on first use, so a server started with gRPC disabled never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["GrpcServerHandle", "start_grpc_server"]

if TYPE_CHECKING:
    from shipyard.serving.grpc.listener import GrpcServerHandle, start_grpc_server


def __getattr__(name: str) -> Any:
    if name in __all__:
        from shipyard.serving.grpc import listener

        return getattr(listener, name)
    raise AttributeError(f"module 'shipyard.serving.grpc' has no attribute {name!r}")

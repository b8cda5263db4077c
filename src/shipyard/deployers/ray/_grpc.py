"""The Open Inference Protocol's gRPC methods on a Ray Serve replica.

Serve's gRPC proxy (started with ``GRPC_SERVICER`` registered, see ``_connect``) decodes
each call into the request message and calls the replica method of the RPC's name with
it; the method returns the response message, and a non-OK status goes through the
``grpc_context`` Serve passes. The calls are answered by the same ``InferenceServicer``
as on ``shipyard serve``, so errors, codes and messages are the same. Which application a
call is for is the ``application`` metadata key (optional while Serve runs only one).

Imported only in the replicas.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message

from shipyard.errors import ShipyardError
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._servicer import InferenceServicer
from shipyard.serving.grpc._status import RpcError, status_for

__all__ = ["GrpcMethods"]

Rpc = Callable[[bytes, float | None], Awaitable[Message]]


async def _answer(rpc: Rpc, request: Message, context: Any, empty: type[Message]) -> Message:
    try:
        return await rpc(request.SerializeToString(), None)
    except (RpcError, ShipyardError) as err:
        # Ours: the code and message `shipyard serve` sends. Anything else is a bug and
        # reaches Serve, which answers INTERNAL and logs the traceback.
        if context is None:
            raise
        import grpc

        failure = err if isinstance(err, RpcError) else RpcError(status_for(err), str(err))
        context.set_code(grpc.StatusCode[failure.code.name])
        context.set_details(failure.message)
        return empty()


class GrpcMethods:
    """``inference.GRPCInferenceService``'s unary RPCs, by name, for Serve's gRPC proxy."""

    grpc_servicer: InferenceServicer

    async def ServerLive(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(servicer.server_live, request, grpc_context, pb.ServerLiveResponse)

    async def ServerReady(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(servicer.server_ready, request, grpc_context, pb.ServerReadyResponse)

    async def ModelReady(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(servicer.model_ready, request, grpc_context, pb.ModelReadyResponse)

    async def ServerMetadata(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(
            servicer.server_metadata, request, grpc_context, pb.ServerMetadataResponse
        )

    async def ModelMetadata(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(
            servicer.model_metadata, request, grpc_context, pb.ModelMetadataResponse
        )

    async def ModelInfer(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(servicer.model_infer, request, grpc_context, pb.ModelInferResponse)

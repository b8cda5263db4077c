"""The Open Inference Protocol's gRPC methods on a Ray Serve replica.

Serve's gRPC proxy (started with ``GRPC_SERVICER`` registered, see
``shipyard._ray.connect``) decodes each call into the request message and calls the
replica method of the RPC's name with it; the method returns the response message, and a
non-OK status goes through the ``grpc_context`` Serve passes. The calls are answered by
the same ``InferenceServicer`` as on ``shipyard serve``, so errors, codes and messages are
the same. Which application a call is for is the ``application`` metadata key (optional
while Serve runs only one).

With a token (``auth``), every call but the open health methods must carry it in the
``authorization`` metadata entry, as on ``shipyard serve``: UNAUTHENTICATED otherwise.

Imported only in the replicas.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message

from shipyard.errors import ShipyardError
from shipyard.serving.auth import BearerAuth
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._servicer import InferenceServicer
from shipyard.serving.grpc._status import RpcError, status_for

__all__ = ["GrpcMethods"]

Rpc = Callable[[bytes, float | None], Awaitable[Message]]


_SERVICE = "/inference.GRPCInferenceService/"


def _refused(auth: BearerAuth | None, method: str, context: Any) -> bool:
    """Whether the call lacks the token it needs (then UNAUTHENTICATED is set on it)."""
    if auth is None or _SERVICE + method in auth.open_grpc_methods:
        return False
    metadata = context.invocation_metadata() if context is not None else []
    value = next((v for k, v in metadata if k.lower() == "authorization"), None)
    if auth.allows(value):
        return False
    if context is not None:
        import grpc

        context.set_code(grpc.StatusCode.UNAUTHENTICATED)
        context.set_details(
            "This server requires a bearer token: send the metadata 'authorization: Bearer "
            "<token>' (shipyard's Service.request_headers() has it)."
        )
    return True


async def _answer(
    rpc: Rpc, request: Message, context: Any, empty: type[Message], auth: BearerAuth | None
) -> Message:
    method = empty.__name__.removesuffix("Response")
    if _refused(auth, method, context):
        return empty()
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
    auth: BearerAuth | None = None

    async def ServerLive(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(
            servicer.server_live, request, grpc_context, pb.ServerLiveResponse, self.auth
        )

    async def ServerReady(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(
            servicer.server_ready, request, grpc_context, pb.ServerReadyResponse, self.auth
        )

    async def ModelReady(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(
            servicer.model_ready, request, grpc_context, pb.ModelReadyResponse, self.auth
        )

    async def ServerMetadata(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(
            servicer.server_metadata, request, grpc_context, pb.ServerMetadataResponse, self.auth
        )

    async def ModelMetadata(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(
            servicer.model_metadata, request, grpc_context, pb.ModelMetadataResponse, self.auth
        )

    async def ModelInfer(self, request: Message, grpc_context: Any = None) -> Message:
        servicer = self.grpc_servicer
        return await _answer(
            servicer.model_infer, request, grpc_context, pb.ModelInferResponse, self.auth
        )

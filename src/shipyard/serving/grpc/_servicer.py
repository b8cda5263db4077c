"""The ``inference.GRPCInferenceService`` methods: translate, call the data plane, translate.

No inference rule lives here; the data plane decides everything, and its
``ShipyardError`` becomes a gRPC status whose details are the error's message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NoReturn, Protocol

import grpc
import grpc.aio

from shipyard.errors import ShipyardError
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc.codec import decode_infer_request, encode_infer_response
from shipyard.serving.types import InferenceRequest, InferenceResponse

__all__ = ["DataPlaneLike", "InferenceServicer", "status_code_for"]

_log = logging.getLogger(__name__)

_STATUS_BY_HTTP: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}

Context = grpc.aio.ServicerContext[Any, Any]


class DataPlaneLike(Protocol):
    """What the gRPC layer needs from ``shipyard.serving.dataplane.DataPlane``."""

    def live(self) -> bool: ...

    def ready(self) -> bool: ...

    def server_metadata(self) -> dict[str, Any]: ...

    def model_metadata(self, name: str, version: str | None) -> dict[str, Any]: ...

    def model_ready(self, name: str, version: str | None) -> bool: ...

    async def infer(
        self, name: str, version: str | None, request: InferenceRequest
    ) -> InferenceResponse: ...


def status_code_for(err: ShipyardError) -> grpc.StatusCode:
    """The gRPC status for an error, from the HTTP status on its class."""
    return _STATUS_BY_HTTP.get(err.status_code, grpc.StatusCode.INTERNAL)


async def _abort(context: Context, err: Exception) -> NoReturn:
    if isinstance(err, ShipyardError):
        await context.abort(status_code_for(err), str(err))
    # Not one of ours: a bug somewhere below. Keep the traceback in the log, and still
    # give the caller the message rather than grpc's generic "Unexpected error".
    _log.exception("gRPC request failed unexpectedly")
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")


def _tensor_metadata(items: Any) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    return [
        pb.ModelMetadataResponse.TensorMetadata(
            name=item["name"], datatype=item["datatype"], shape=item["shape"]
        )
        for item in items or ()
    ]


def _model_metadata(meta: Mapping[str, Any]) -> pb.ModelMetadataResponse:
    return pb.ModelMetadataResponse(
        name=meta["name"],
        versions=[str(v) for v in meta.get("versions") or ()],
        platform=meta.get("platform") or "",
        inputs=_tensor_metadata(meta.get("inputs")),
        outputs=_tensor_metadata(meta.get("outputs")),
    )


class InferenceServicer:
    """Method names are the RPC names, as the generated registration expects."""

    def __init__(self, dataplane: DataPlaneLike) -> None:
        self._dataplane = dataplane

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self._dataplane.live())

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._dataplane.ready())

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        try:
            ready = self._dataplane.model_ready(request.name, request.version or None)
        except Exception as err:
            await _abort(context, err)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        try:
            meta = self._dataplane.server_metadata()
        except Exception as err:
            await _abort(context, err)
        return pb.ServerMetadataResponse(
            name=meta.get("name", ""),
            version=meta.get("version", ""),
            extensions=list(meta.get("extensions") or ()),
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        try:
            return _model_metadata(
                self._dataplane.model_metadata(request.name, request.version or None)
            )
        except Exception as err:
            await _abort(context, err)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        try:
            response = await self._dataplane.infer(
                request.model_name, request.model_version or None, decode_infer_request(request)
            )
            return encode_infer_response(response, raw=bool(request.raw_input_contents))
        except Exception as err:
            await _abort(context, err)

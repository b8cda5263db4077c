"""The ``inference.GRPCInferenceService`` methods: translate, call the data plane, translate.

No inference rule lives here; the data plane decides everything, and its
``ShipyardError`` becomes a gRPC status whose details are the error's message.

The servicer runs on the gRPC thread's event loop: protobuf decoding and encoding
happen there, and every data-plane call (and metrics update) is handed to the data
plane's own loop through a ``PlaneBridge``: only that loop ever touches the data plane.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
import grpc.aio

from shipyard.errors import ShipyardError
from shipyard.serving.grpc._bridge import PlaneBridge
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc.codec import decode_infer_request, encode_infer_response
from shipyard.serving.metrics import Metrics
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
T = TypeVar("T")


class DataPlaneLike(Protocol):
    """What the gRPC layer needs from ``shipyard.serving.dataplane.DataPlane``."""

    @property
    def metrics(self) -> Metrics | None: ...

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


def _http_status(err: BaseException | None) -> int:
    if err is None:
        return 200
    return err.status_code if isinstance(err, ShipyardError) else 500


async def _abort(context: Context, err: Exception) -> NoReturn:
    if isinstance(err, ShipyardError):
        await context.abort(status_code_for(err), str(err))
    # Not one of ours: a bug somewhere below. Keep the traceback in the log, and still
    # give the caller the message rather than grpc's generic "Unexpected error".
    _log.error("gRPC request failed unexpectedly", exc_info=err)
    await context.abort(grpc.StatusCode.INTERNAL, f"Internal error: {type(err).__name__}: {err}")


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
    """Method names are the RPC names, as the generated registration expects.

    ``bridge`` carries every data-plane call to the data plane's loop.
    """

    def __init__(self, dataplane: DataPlaneLike, bridge: PlaneBridge) -> None:
        self._dataplane = dataplane
        self._bridge = bridge

    async def _call(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return await self._bridge.run(run)

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=await self._call(self._dataplane.live))

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=await self._call(self._dataplane.ready))

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        name, version = request.name, request.version or None
        try:
            ready = await self._call(lambda: self._dataplane.model_ready(name, version))
        except Exception as err:
            await _abort(context, err)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        try:
            meta = await self._call(self._dataplane.server_metadata)
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
        name, version = request.name, request.version or None
        try:
            meta = await self._call(lambda: self._dataplane.model_metadata(name, version))
            return _model_metadata(meta)
        except Exception as err:
            await _abort(context, err)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        started = time.perf_counter()
        name, version = request.model_name, request.model_version or None
        try:
            decoded = decode_infer_request(request)
        except Exception as err:
            error = err  # the except variable is gone by the time the lambda runs
            await self._call(lambda: self._observe(name, error, started))
            await _abort(context, err)
        try:
            response = await self._bridge.run(lambda: self._infer(name, version, decoded, started))
            return encode_infer_response(response, raw=bool(request.raw_input_contents))
        except Exception as err:
            await _abort(context, err)

    async def _infer(
        self, name: str, version: str | None, request: InferenceRequest, started: float
    ) -> InferenceResponse:
        # Runs on the data plane's loop, like the metrics it records.
        failure: Exception | None = None
        try:
            return await self._dataplane.infer(name, version, request)
        except Exception as err:
            failure = err
            raise
        finally:
            self._observe(name, failure, started)

    def _observe(self, name: str, failure: Exception | None, started: float) -> None:
        metrics = self._dataplane.metrics
        if metrics is not None:
            status = _http_status(failure)
            metrics.observe_request(name, "grpc", status, time.perf_counter() - started)

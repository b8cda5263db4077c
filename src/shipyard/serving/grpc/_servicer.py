"""The ``inference.GRPCInferenceService`` methods: parse, call the data plane, serialize.

No inference rule lives here; the data plane decides everything, and its
``ShipyardError`` becomes a gRPC status whose details are the error's message. The
methods run on the data plane's own loop (the gRPC connections live there too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError, Message

from shipyard.errors import ShipyardError
from shipyard.serving.grpc._calls import Method
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._status import RpcError, StatusCode, status_for
from shipyard.serving.grpc.codec import decode_infer_request, encode_infer_response
from shipyard.serving.metrics import Metrics

if TYPE_CHECKING:
    # The one inference path the REST side uses too; only a type here, so importing the
    # gRPC layer does not import the data plane's dependencies.
    from shipyard.serving.dataplane import DataPlane

__all__ = ["SERVICE", "InferenceServicer", "status_for"]

_log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"


def _http_status(err: BaseException | None) -> int:
    if err is None:
        return 200
    return err.status_code if isinstance(err, ShipyardError) else 500


def _rpc_error(err: Exception) -> RpcError:
    if isinstance(err, RpcError):
        return err
    if isinstance(err, ShipyardError):
        return RpcError(status_for(err), str(err))
    # Not one of ours: a bug somewhere below. Keep the traceback in the log, and still
    # give the caller the message rather than a generic "Unexpected error".
    _log.error("gRPC request failed unexpectedly", exc_info=err)
    return RpcError(StatusCode.INTERNAL, f"Internal error: {type(err).__name__}: {err}")


def _parse(cls: type[Any], data: bytes) -> Any:
    try:
        return cls.FromString(data)
    except DecodeError as err:
        raise RpcError(
            StatusCode.INVALID_ARGUMENT, f"The request is not a valid {cls.__name__}: {err}"
        ) from err


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
    """The RPCs of ``inference.GRPCInferenceService`` over one data plane."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

    def methods(self) -> dict[str, Method]:
        """``:path`` -> method, as the connections dispatch them."""
        rpcs: dict[str, Callable[[bytes, float | None], Awaitable[Message]]] = {
            "ServerLive": self.server_live,
            "ServerReady": self.server_ready,
            "ModelReady": self.model_ready,
            "ServerMetadata": self.server_metadata,
            "ModelMetadata": self.model_metadata,
            "ModelInfer": self.model_infer,
        }
        return {f"/{SERVICE}/{name}": _serialized(rpc) for name, rpc in rpcs.items()}

    async def server_live(self, data: bytes, timeout: float | None = None) -> pb.ServerLiveResponse:
        _parse(pb.ServerLiveRequest, data)
        return pb.ServerLiveResponse(live=self._dataplane.live())

    async def server_ready(
        self, data: bytes, timeout: float | None = None
    ) -> pb.ServerReadyResponse:
        _parse(pb.ServerReadyRequest, data)
        return pb.ServerReadyResponse(ready=self._dataplane.ready())

    async def model_ready(self, data: bytes, timeout: float | None = None) -> pb.ModelReadyResponse:
        request = _parse(pb.ModelReadyRequest, data)
        ready = self._dataplane.model_ready(request.name, request.version or None)
        return pb.ModelReadyResponse(ready=ready)

    async def server_metadata(
        self, data: bytes, timeout: float | None = None
    ) -> pb.ServerMetadataResponse:
        _parse(pb.ServerMetadataRequest, data)
        meta = self._dataplane.server_metadata()
        return pb.ServerMetadataResponse(
            name=meta.get("name", ""),
            version=meta.get("version", ""),
            extensions=list(meta.get("extensions") or ()),
        )

    async def model_metadata(
        self, data: bytes, timeout: float | None = None
    ) -> pb.ModelMetadataResponse:
        request = _parse(pb.ModelMetadataRequest, data)
        return _model_metadata(
            self._dataplane.model_metadata(request.name, request.version or None)
        )

    async def model_infer(self, data: bytes, timeout: float | None = None) -> pb.ModelInferResponse:
        started = time.perf_counter()
        request = _parse(pb.ModelInferRequest, data)
        name = request.model_name
        failure: BaseException | None = None
        try:
            decoded = decode_infer_request(request)
            response = await self._dataplane.infer(
                name, request.model_version or None, decoded, timeout
            )
            return encode_infer_response(response, raw=bool(request.raw_input_contents))
        except BaseException as err:  # CancelledError too: counted, then passed on
            failure = err
            raise
        finally:
            metrics = self._dataplane.metrics
            if metrics is not None:
                _observe(metrics, name, failure, time.perf_counter() - started)


def _observe(metrics: Metrics, model: str, failure: BaseException | None, seconds: float) -> None:
    if isinstance(failure, asyncio.CancelledError):
        metrics.observe_unserved(model, "grpc", "cancelled")
        return
    metrics.observe_request(model, "grpc", _http_status(failure), seconds)
    unserved = getattr(failure, "unserved", None)
    if unserved is not None:
        metrics.observe_unserved(model, "grpc", unserved)


def _serialized(rpc: Callable[[bytes, float | None], Awaitable[Message]]) -> Method:
    async def method(data: bytes, timeout: float | None) -> bytes:
        try:
            reply = await rpc(data, timeout)
        except Exception as err:
            raise _rpc_error(err) from err
        serialized: bytes = reply.SerializeToString()
        return serialized

    return method

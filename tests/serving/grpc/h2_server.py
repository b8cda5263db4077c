"""The gRPC server on a thread of its own, and request helpers, for the HTTP/2 tests.

The server is the real one (``start_grpc_server``, a real DataPlane with real models) on
a uvloop loop in a thread, as in a worker, so blocking clients (``h2_client``, grpcio's
sync stubs) can talk to it from the test's own thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import uvloop
from grpc_helpers import infer_request
from h2_client import TIMEOUT, Answer

from shipyard.serving.config import BatchingConfig, ModelSpec
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.grpc import GrpcServerHandle, start_grpc_server
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc.codec import decode_infer_response
from shipyard.serving.metrics import Metrics

__all__ = [
    "INFER",
    "LIVE",
    "SERVICE",
    "ThreadServer",
    "dawdle",
    "frames_on",
    "infer_request",
    "outputs",
    "plane",
    "raw_headers",
    "wait_for_mark",
]

T = TypeVar("T")

SERVICE = "/inference.GRPCInferenceService/"
INFER, LIVE = SERVICE + "ModelInfer", SERVICE + "ServerLive"


class ThreadServer:
    """``start_grpc_server`` on a uvloop loop of its own thread, as in a worker."""

    def __init__(self, dataplane: DataPlane, **options: Any) -> None:
        self.dataplane = dataplane
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        try:
            starting = start_grpc_server(dataplane, "127.0.0.1", 0, **options)
            self.handle: GrpcServerHandle = self.run(starting)
        except BaseException:
            self._end_loop()
            raise
        self.port = self.handle.port

    def __enter__(self) -> ThreadServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.submit(coroutine).result(TIMEOUT)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        try:
            self.run(self.handle.stop(0))
            self.run(_cancel_the_rest())
            self.run(self.loop.shutdown_default_executor())
        finally:
            self._end_loop()

    def _end_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()


async def _cancel_the_rest() -> None:
    """Tasks the server leaves behind (the batchers' drain loops)."""
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def plane(models: Path) -> DataPlane:
    """logistic, shout, picky and dawdle from ``save_grpc_models``, default batching."""
    served = DataPlane(Metrics(), expose_errors=True)  # messages checked on the wire
    for name in ("logistic", "shout", "picky", "dawdle"):
        spec = ModelSpec(uri=str(models / name), name=name)
        served.add(served.load_model(spec, BatchingConfig()))
    return served


def wait_for_mark(marks: Path) -> None:
    """Until a Dawdle call has reached its predictor (it leaves a file in ``marks``)."""
    deadline = time.monotonic() + TIMEOUT
    while not any(marks.glob("started-*")):
        if time.monotonic() > deadline:
            raise AssertionError("the Dawdle predictor never started")
        time.sleep(0.005)


def dawdle(seconds: float) -> bytes:
    """A serialized call to the Dawdle model that stays in flight for ``seconds``."""
    data: bytes = infer_request(np.full((1, 1), seconds), model="dawdle").SerializeToString()
    return data


def outputs(answer: Answer) -> np.ndarray[Any, Any]:
    """The one output tensor of a successful ModelInfer answer."""
    assert answer.status["grpc-status"] == "0", answer.status
    (output,) = decode_infer_response(pb.ModelInferResponse.FromString(answer.message())).outputs
    return np.asarray(output.data)


def frames_on(frames: list[Any], stream_id: int, kind: type[Any] = object) -> list[Any]:
    """The frames of one stream (of one type), in the order they came."""
    return [f for f in frames if f.stream_id == stream_id and isinstance(f, kind)]


def raw_headers(path: str) -> list[tuple[str, str]]:
    """The request headers of a gRPC call to ``path``."""
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
    ]

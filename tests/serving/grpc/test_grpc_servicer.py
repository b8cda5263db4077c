"""The gRPC server in this process: a real DataPlane with real models, our gRPC server on
127.0.0.1 on a uvloop loop, as in a worker, and a grpc.aio client talking to it."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import joblib
import numpy as np
import pytest
import uvloop
from grpc_helpers import FEATURES, infer_request, save_grpc_models, serving

from shipyard.errors import (
    BadRequestError,
    InvalidInputError,
    ModelNotFoundError,
    ModelNotReadyError,
    PayloadTooLargeError,
    PredictorError,
    ServiceError,
    ShipyardError,
    UnsupportedMediaTypeError,
)
from shipyard.serving.config import BatchingConfig, ModelSpec
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.grpc import start_grpc_server
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.serving.grpc._status import status_for
from shipyard.serving.grpc.codec import decode_infer_response
from shipyard.serving.metrics import Metrics
from shipyard.testing import async_wait_until, metric_value

Stub = Any  # the generated stub is untyped


@pytest.fixture(scope="module")
def grpc_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(save_grpc_models(tmp_path_factory.mktemp("grpc-models")))


def _plane(models: Path, *names: str, batching: BatchingConfig | None = None) -> DataPlane:
    plane = DataPlane(Metrics())
    for name in names:
        spec = ModelSpec(uri=str(models / name), name=name)
        plane.add(plane.load_model(spec, batching or BatchingConfig()))
    return plane


def _run(plane: DataPlane, scenario: Callable[[Stub], Awaitable[None]], **options: int) -> None:
    async def main() -> None:
        async with serving(plane, **options) as (_, stub):
            await scenario(stub)

    uvloop.run(main())


async def _status(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), caught.value.details() or ""


def test_health_and_metadata(grpc_models: Path) -> None:
    plane = _plane(grpc_models, "logistic")

    async def scenario(stub: Stub) -> None:
        assert (await stub.ServerLive(pb.ServerLiveRequest())).live is True
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready is True
        meta = await stub.ServerMetadata(pb.ServerMetadataRequest())
        assert meta.name == "shipyard"
        assert list(meta.extensions) == plane.server_metadata()["extensions"]
        ready = await stub.ModelReady(pb.ModelReadyRequest(name="logistic"))
        assert ready.ready is True
        model = await stub.ModelMetadata(pb.ModelMetadataRequest(name="logistic"))
        assert (model.name, model.platform) == ("logistic", "sklearn")
        assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [
            ("input-0", "FP64", [-1, 4])
        ]

    _run(plane, scenario)


@pytest.mark.parametrize("raw", [False, True], ids=["contents", "raw"])
def test_infer_gives_the_model_s_own_predictions(grpc_models: Path, raw: bool) -> None:
    plane = _plane(grpc_models, "logistic")
    local = joblib.load(grpc_models / "logistic" / "model.joblib")
    rows = FEATURES[:5]

    async def scenario(stub: Stub) -> None:
        answer = await stub.ModelInfer(infer_request(rows, raw=raw, request_id="req-1"))
        assert (answer.model_name, answer.id) == ("logistic", "req-1")
        # Triton's rule: raw in, raw out; typed contents otherwise.
        assert bool(answer.raw_output_contents) is raw
        (output,) = decode_infer_response(answer).outputs
        assert output.datatype == "INT64"
        np.testing.assert_array_equal(output.data, local.predict(rows))

    _run(plane, scenario)


def test_bytes_both_ways_and_requested_outputs(grpc_models: Path) -> None:
    plane = _plane(grpc_models, "shout")
    words = [b"grpc", b"", "h\u00e9".encode()]

    async def scenario(stub: Stub) -> None:
        request = pb.ModelInferRequest(model_name="shout")
        request.inputs.add(name="text", datatype="BYTES", shape=[3])
        request.inputs[0].contents.bytes_contents.extend(words)
        typed = await stub.ModelInfer(request)
        outputs = {t.name: t for t in typed.outputs}
        assert list(outputs["upper"].contents.bytes_contents) == [w.upper() for w in words]
        assert list(outputs["length"].contents.int64_contents) == [4, 0, 3]

        raw = pb.ModelInferRequest(model_name="shout")
        raw.inputs.add(name="text", datatype="BYTES", shape=[3])
        raw.raw_input_contents.append(b"".join(struct.pack("<I", len(w)) + w for w in words))
        raw.outputs.add(name="upper")
        answer = await stub.ModelInfer(raw)
        assert [t.name for t in answer.outputs] == ["upper"]
        assert answer.raw_output_contents[0] == b"".join(
            struct.pack("<I", len(w)) + w.upper() for w in words
        )

    _run(plane, scenario)


def test_errors_become_status_codes_and_the_server_keeps_serving(grpc_models: Path) -> None:
    plane = _plane(grpc_models, "logistic", "picky")

    async def scenario(stub: Stub) -> None:
        code, details = await _status(
            stub.ModelInfer(infer_request(FEATURES[:1], raw=False, model="x"))
        )
        assert code == grpc.StatusCode.NOT_FOUND
        assert "'x'" in details

        code, details = await _status(stub.ModelMetadata(pb.ModelMetadataRequest(name="x")))
        assert code == grpc.StatusCode.NOT_FOUND

        short = infer_request(FEATURES[:1], raw=True)
        short.raw_input_contents[0] = short.raw_input_contents[0][:-8]
        code, details = await _status(stub.ModelInfer(short))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "'input-0'" in details
        assert "32 bytes" in details

        narrow = infer_request(FEATURES[:1, :3], raw=False)
        code, details = await _status(stub.ModelInfer(narrow))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "input-0" in details

        negative = infer_request(-np.ones((1, 2)), raw=False, model="picky")
        code, details = await _status(stub.ModelInfer(negative))
        assert code == grpc.StatusCode.INTERNAL
        assert "Picky refuses negative values" in details

        fine = await stub.ModelInfer(infer_request(np.ones((1, 2)), raw=False, model="picky"))
        assert list(fine.outputs[0].contents.fp64_contents) == [2.0, 2.0]
        assert (await stub.ModelInfer(infer_request(FEATURES[:1], raw=False))).outputs

    _run(plane, scenario)
    text = plane.metrics.collect() if plane.metrics else ""
    assert 'shipyard_requests_total{model="logistic",protocol="grpc",status="200"} 1' in text
    assert 'shipyard_requests_total{model="x",protocol="grpc",status="404"} 1' in text
    assert 'shipyard_requests_total{model="logistic",protocol="grpc",status="400"} 2' in text
    assert 'shipyard_requests_total{model="picky",protocol="grpc",status="500"} 1' in text


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadRequestError, grpc.StatusCode.INVALID_ARGUMENT),
        (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
        (UnsupportedMediaTypeError, grpc.StatusCode.INVALID_ARGUMENT),
        (ModelNotFoundError, grpc.StatusCode.NOT_FOUND),
        (PayloadTooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ModelNotReadyError, grpc.StatusCode.UNAVAILABLE),
        (PredictorError, grpc.StatusCode.INTERNAL),
        (ShipyardError, grpc.StatusCode.INTERNAL),
    ],
)
def test_status_code_for_every_http_status(error: type[ShipyardError], code: Any) -> None:
    # Our codes are numbered as grpcio numbers them (its StatusCode values are (int, name)).
    assert int(status_for(error("x"))) == code.value[0]


def test_messages_over_the_limit_are_refused(grpc_models: Path) -> None:
    plane = _plane(grpc_models, "logistic")

    async def scenario(stub: Stub) -> None:
        code, _ = await _status(stub.ModelInfer(infer_request(FEATURES, raw=True)))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (await stub.ModelInfer(infer_request(FEATURES[:2], raw=True))).outputs

    _run(plane, scenario, max_message_bytes=2048)


def test_concurrent_calls_share_predict_calls(grpc_models: Path) -> None:
    plane = _plane(grpc_models, "ponder", batching=BatchingConfig(max_batch_size=64))
    rows = [np.full((1, 3), float(i)) for i in range(16)]

    async def scenario(stub: Stub) -> None:
        answers = await asyncio.gather(
            *(stub.ModelInfer(infer_request(r, raw=True, model="ponder")) for r in rows)
        )
        for row, answer in zip(rows, answers, strict=True):
            (output,) = decode_infer_response(answer).outputs
            np.testing.assert_array_equal(output.data, row.sum(axis=1))

    _run(plane, scenario)
    text = plane.metrics.collect() if plane.metrics else ""
    count = metric_value(text, 'shipyard_batch_requests_count{model="ponder"}', default=None)
    # 16 calls, each predict blocks 0.2 s: the ones arriving meanwhile share the next call.
    assert 1 <= count < 16


def test_stop_lets_calls_in_flight_finish(
    grpc_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRPC_TEST_MARKS", str(tmp_path))
    plane = _plane(grpc_models, "dawdle")

    async def main() -> None:
        handle = await start_grpc_server(plane, "127.0.0.1", 0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
            in_flight = asyncio.ensure_future(
                stub.ModelInfer(infer_request(np.full((1, 1), 0.5), raw=False, model="dawdle"))
            )
            await async_wait_until(
                lambda: any(tmp_path.glob("started-*")), "the call to reach predict()"
            )
            await handle.stop(grace=30)
            answer = await in_flight
            assert list(answer.outputs[0].contents.fp64_contents) == [0.5]
            code, _ = await _status(stub.ServerLive(pb.ServerLiveRequest()))
            assert code == grpc.StatusCode.UNAVAILABLE

    uvloop.run(main())


def test_a_busy_port_is_a_clear_error(grpc_models: Path) -> None:
    plane = _plane(grpc_models, "logistic")
    with socket.socket() as taken:  # bound without SO_REUSEPORT: nobody may share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def main() -> None:
            with pytest.raises(ServiceError, match=f"127.0.0.1:{port}.*--grpc-port"):
                await start_grpc_server(plane, "127.0.0.1", port)

        uvloop.run(main())


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_host_is_bracketed(grpc_models: Path) -> None:
    plane = _plane(grpc_models, "logistic")

    async def main() -> None:
        handle = await start_grpc_server(plane, "::1", 0)
        try:
            async with grpc.aio.insecure_channel(f"[::1]:{handle.port}") as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
                assert (await stub.ServerLive(pb.ServerLiveRequest())).live
        finally:
            await handle.stop(0)

    uvloop.run(main())

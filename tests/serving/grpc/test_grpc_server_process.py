"""The real server process (``python -m shipyard.serving``, 2 workers) over gRPC, with a
plain grpcio client and the V2 stubs, as a KServe/Triton/MLServer client would talk."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import httpx
import joblib
import numpy as np
import pytest
from grpc_helpers import FEATURES, infer_request, save_grpc_models

from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.testing import ServerProcess, metric_value, start_server, wait_until

Stub = Any  # the generated stub is untyped


@pytest.fixture(scope="module")
def grpc_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(save_grpc_models(tmp_path_factory.mktemp("grpc-models")))


@pytest.fixture(scope="module")
def server(grpc_models: Path) -> Iterator[ServerProcess]:
    uris = [grpc_models / name for name in ("logistic", "shout", "picky")]
    with start_server(*uris, workers=2, grpc=True) as process:
        yield process


@pytest.fixture
def stub(server: ServerProcess) -> Iterator[Stub]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


def _error(call: Any, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call(request)
    error: Any = caught.value
    return error.code(), error.details()


def test_health_and_metadata(stub: Stub) -> None:
    assert stub.ServerLive(pb.ServerLiveRequest()).live is True
    assert stub.ServerReady(pb.ServerReadyRequest()).ready is True
    server = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert server.name == "shipyard"
    assert stub.ModelReady(pb.ModelReadyRequest(name="shout")).ready is True
    model = stub.ModelMetadata(pb.ModelMetadataRequest(name="logistic"))
    assert (model.name, model.platform) == ("logistic", "sklearn")
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [
        ("input-0", "FP64", [-1, 4])
    ]


def test_infer_with_contents_and_with_raw_input_contents(stub: Stub, grpc_models: Path) -> None:
    expected = joblib.load(grpc_models / "logistic" / "model.joblib").predict(FEATURES[:7])

    typed = stub.ModelInfer(infer_request(FEATURES[:7], raw=False))
    assert typed.model_name == "logistic"
    assert list(typed.raw_output_contents) == []
    assert (typed.outputs[0].datatype, list(typed.outputs[0].shape)) == ("INT64", [7])
    assert list(typed.outputs[0].contents.int64_contents) == expected.tolist()

    raw = stub.ModelInfer(infer_request(FEATURES[:7], raw=True))
    assert not raw.outputs[0].HasField("contents")
    got = np.frombuffer(raw.raw_output_contents[0], dtype="<i8")
    np.testing.assert_array_equal(got, expected)


def test_bytes_in_and_out(stub: Stub) -> None:
    words = [b"open", b"inference", "\u00fcber".encode()]
    request = pb.ModelInferRequest(model_name="shout", id="b-1")
    request.inputs.add(name="text", datatype="BYTES", shape=[3])
    request.raw_input_contents.append(b"".join(struct.pack("<I", len(w)) + w for w in words))
    answer = stub.ModelInfer(request)
    assert answer.id == "b-1"
    names = [t.name for t in answer.outputs]
    upper = answer.raw_output_contents[names.index("upper")]
    assert upper == b"".join(struct.pack("<I", len(w)) + w.upper() for w in words)
    lengths = np.frombuffer(answer.raw_output_contents[names.index("length")], dtype="<i8")
    assert lengths.tolist() == [4, 9, 5]


def test_mistakes_get_status_codes_and_the_server_keeps_serving(
    stub: Stub, server: ServerProcess
) -> None:
    unknown = infer_request(FEATURES[:1], raw=False)
    unknown.model_name = "no-such-model"
    code, details = _error(stub.ModelInfer, unknown)
    assert code == grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in details

    code, _ = _error(stub.ModelReady, pb.ModelReadyRequest(name="no-such-model"))
    assert code == grpc.StatusCode.NOT_FOUND

    mismatched = infer_request(FEATURES[:2], raw=False)
    mismatched.inputs[0].shape[:] = [3, 4]
    code, details = _error(stub.ModelInfer, mismatched)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "'input-0'" in details
    assert "12 elements" in details

    narrow = infer_request(FEATURES[:2, :3], raw=True)
    code, details = _error(stub.ModelInfer, narrow)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "input-0" in details

    negative = pb.ModelInferRequest(model_name="picky")
    negative.inputs.add(name="x", datatype="FP64", shape=[1, 1]).contents.fp64_contents.append(-1)
    code, details = _error(stub.ModelInfer, negative)
    assert code == grpc.StatusCode.INTERNAL
    assert "Picky refuses negative values" in details

    assert server.process.poll() is None
    assert stub.ModelInfer(infer_request(FEATURES[:1], raw=True)).outputs
    workers = server.status()["workers"]
    assert len(workers) == 2
    assert all(w.get("ready") for w in workers), workers


def _listeners(port: int) -> int:
    """How many sockets listen on ``port`` (each worker binds its own: SO_REUSEPORT)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def test_every_worker_listens_and_concurrent_calls_all_succeed(server: ServerProcess) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp to count listening sockets")
    assert server.grpc_port is not None
    assert _listeners(server.grpc_port) == 2

    rows = [FEATURES[i : i + 1] for i in range(48)]

    async def calls() -> list[Any]:
        # Separate connections (a local subchannel pool each), as separate clients would
        # open: the kernel spreads them over the workers.
        channels = [
            grpc.aio.insecure_channel(
                server.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(6)
        ]
        try:
            stubs = [pb_grpc.GRPCInferenceServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
            return await asyncio.gather(
                *(
                    stubs[i % len(stubs)].ModelInfer(infer_request(row, raw=i % 2 == 0))
                    for i, row in enumerate(rows)
                )
            )
        finally:
            for channel in channels:
                await channel.close()

    answers = asyncio.run(calls())
    assert len(answers) == 48
    assert all(len(a.outputs) == 1 for a in answers)

    # Each worker writes its numbers to the shared folder a few times a second: wait for
    # both to have written theirs.
    series = 'shipyard_requests_total{model="logistic",protocol="grpc",status="200"}'
    wait_until(
        lambda: metric_value(httpx.get(f"{server.url}/metrics", timeout=30).text, series) >= 48,
        "both workers' gRPC counts in /metrics",
    )


def test_the_bench_load_loop_against_the_server(server: ServerProcess, tmp_path: Path) -> None:
    from shipyard.serving.grpc import bench

    body = tmp_path / "body.bin"
    code = bench.main(
        [
            server.grpc_target,
            "logistic",
            "--duration",
            "0.5",
            "--concurrency",
            "4",
            "--channels",
            "2",
            "--h2load-body",
            str(body),
        ]
    )
    assert code == 0
    framed = body.read_bytes()
    flag, length = struct.unpack(">BI", framed[:5])
    assert (flag, length) == (0, len(framed) - 5)
    request = pb.ModelInferRequest()
    request.ParseFromString(framed[5:])
    assert (request.model_name, list(request.inputs[0].shape)) == ("logistic", [1, 4])

    async def load() -> bench.LoadResult:
        wanted = await bench.build_request(server.grpc_target, "logistic", 3, raw=False)
        return await bench.run_load(server.grpc_target, wanted, concurrency=3, duration=0.3)

    result = asyncio.run(load())
    assert result.requests > 0
    assert result.errors == 0
    assert result.raw is False

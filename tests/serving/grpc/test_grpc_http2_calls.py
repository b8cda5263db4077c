"""gRPC over HTTP/2 on our server: what is checked before a call runs, compression,
deadlines and status messages, seen by ``h2`` on the wire and by grpcio's own client.

The server is the real one on a thread of its own (see ``h2_server``).
"""

from __future__ import annotations

import gzip
import urllib.parse
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_helpers import FEATURES, infer_request
from h2.errors import ErrorCodes
from h2_client import H2Client, grpc_body
from h2_fixtures import *  # noqa: F403  (shared fixtures: pytest finds them here)
from h2_server import (
    INFER,
    LIVE,
    SERVICE,
    ThreadServer,
    dawdle,
    frames_on,
    outputs,
    plane,
)
from hyperframe.frame import HeadersFrame, RstStreamFrame

from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.serving.grpc.codec import decode_infer_response
from shipyard.testing import wait_until

Stub = Any  # the generated stub is untyped
RNG = np.random.default_rng(11)


@pytest.fixture
def stub(server: ThreadServer) -> Iterator[Stub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


# -- gRPC over HTTP/2: the checks before a call runs --------------------------------------


_BAD_REQUESTS: dict[str, tuple[dict[str, Any], bytes, dict[str, str]]] = {
    "json content-type": (
        {"content-type": "application/json"},
        grpc_body(b""),
        {":status": "415"},
    ),
    "GET": ({"method": "GET"}, b"", {":status": "405"}),
    "unknown method": (
        {"path": SERVICE + "Nope"},
        grpc_body(b""),
        {":status": "200", "grpc-status": "12"},
    ),
    "unknown service": (
        {"path": "/other.Service/ModelInfer"},
        grpc_body(b""),
        {":status": "200", "grpc-status": "12"},
    ),
    "not protobuf": ({}, grpc_body(b"\xff\xff\xff\xff"), {"grpc-status": "3"}),
    "two messages": ({}, grpc_body(b"") * 2, {"grpc-status": "13"}),
    "truncated message": ({}, grpc_body(b"\x0a\x03abc")[:-1], {"grpc-status": "13"}),
    "no message": ({}, b"", {"grpc-status": "13"}),
}


@pytest.mark.parametrize("case", list(_BAD_REQUESTS))
def test_requests_refused_before_the_call_are_trailers_only(
    client: H2Client, local_model: Any, case: str
) -> None:
    options, body, expected = _BAD_REQUESTS[case]
    stream_id = client.request(
        options.get("path", INFER),
        body,
        method=options.get("method", "POST"),
        content_type=options.get("content-type", "application/grpc"),
    )
    answer = client.wait(stream_id)
    assert answer.headers is not None
    assert {k: answer.headers.get(k) for k in expected} == expected
    # One HEADERS frame that ends the stream: no DATA, no separate trailers.
    assert answer.ended and not answer.data and answer.trailers is None
    assert [type(f) for f in frames_on(client.received.frames, stream_id)] == [HeadersFrame]
    assert answer.headers.get("grpc-message")  # every refusal says why
    # The connection goes on serving.
    rows = FEATURES[:2]
    again = client.call(INFER, infer_request(rows).SerializeToString())
    np.testing.assert_array_equal(outputs(again), local_model.predict(rows))


def test_a_request_over_the_limit_is_answered_early(grpc_models: Path, local_model: Any) -> None:
    with ThreadServer(plane(grpc_models), max_message_bytes=10_000) as small:
        client = H2Client(small.port)
        try:
            rows = RNG.normal(size=(5000, 4))  # 160 kB in ten DATA frames
            client.conn.max_outbound_frame_size = 16_384
            big = client.wait(
                client.request(INFER, grpc_body(infer_request(rows).SerializeToString()))
            )
            assert big.status["grpc-status"] == "8"  # RESOURCE_EXHAUSTED
            assert "10000 bytes" in big.status["grpc-message"]
            # Answered before the body ended: the server tells us to stop sending (NO_ERROR),
            # ignores what was already on its way, and goes on serving the connection.
            client.ping(b"rst sent")
            (reset,) = frames_on(client.received.frames, 1, RstStreamFrame)
            assert reset.error_code == ErrorCodes.NO_ERROR
            again = client.call(INFER, infer_request(rows[:3]).SerializeToString())
            np.testing.assert_array_equal(outputs(again), local_model.predict(rows[:3]))
            # Request trailers sent before the RST reached us: ignored too, as RFC 9113
            # 5.1 asks of frames on a stream the receiver reset, not a connection error.
            message = infer_request(rows).SerializeToString()
            late = client.request(INFER, grpc_body(message), trailers=(("x-sum", "1"),))
            assert client.wait(late).status["grpc-status"] == "8"
            again = client.call(INFER, infer_request(rows[:3]).SerializeToString())
            np.testing.assert_array_equal(outputs(again), local_model.predict(rows[:3]))
        finally:
            client.close()


def test_a_large_request_from_grpcio(stub: Stub, local_model: Any) -> None:
    rows = RNG.normal(size=(160_000, 4))  # 5 MB, raw and as typed contents
    for raw in (True, False):
        (output,) = decode_infer_response(stub.ModelInfer(infer_request(rows, raw=raw))).outputs
        np.testing.assert_array_equal(output.data, local_model.predict(rows))


# -- compression ---------------------------------------------------------------------


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    return zlib.compress(data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_messages(client: H2Client, local_model: Any, encoding: str) -> None:
    rows = np.tile(FEATURES[:4], (500, 1))  # repetitive: compresses well
    message = infer_request(rows, raw=False).SerializeToString()
    packed = _compress(message, encoding)
    assert len(packed) < len(message) // 4
    stream_id = client.request(
        INFER, grpc_body(packed, compressed=True), extra=(("grpc-encoding", encoding),)
    )
    np.testing.assert_array_equal(outputs(client.wait(stream_id)), local_model.predict(rows))


@pytest.mark.parametrize("encoding", ["snappy", None])
def test_an_unknown_encoding_is_unimplemented(client: H2Client, encoding: str | None) -> None:
    extra = () if encoding is None else (("grpc-encoding", encoding),)
    body = grpc_body(b"\x00\x01\x02", compressed=True)
    answer = client.wait(client.request(INFER, body, extra=extra))
    assert answer.status["grpc-status"] == "12"
    assert "gzip" in answer.status["grpc-accept-encoding"]


def test_grpcio_with_gzip(server: ThreadServer, local_model: Any) -> None:
    rows = np.tile(FEATURES[:4], (500, 1))
    target = f"127.0.0.1:{server.port}"
    with grpc.insecure_channel(target, compression=grpc.Compression.Gzip) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        answer = stub.ModelInfer(infer_request(rows, raw=False))
        (output,) = decode_infer_response(answer).outputs
        np.testing.assert_array_equal(output.data, local_model.predict(rows))


# -- deadlines and errors ------------------------------------------------------------------


def test_grpc_timeout_ends_the_call_and_the_connection_goes_on(client: H2Client) -> None:
    late = client.request(INFER, grpc_body(dawdle(0.3)), extra=(("grpc-timeout", "50m"),))
    answer = client.wait(late)
    assert answer.status["grpc-status"] == "4"  # DEADLINE_EXCEEDED, from the server
    assert not answer.data
    # Started after it, this call ends after the expired call's predictor returns: by
    # then a late answer on the expired stream would have arrived, and be in the log.
    ok = client.call(INFER, dawdle(0.3), extra=(("grpc-timeout", "20S"),))
    np.testing.assert_array_equal(outputs(ok), [[0.3]])
    client.ping(b"in order")
    assert [type(f) for f in frames_on(client.received.frames, late)] == [HeadersFrame]


def test_grpcio_deadline_then_the_next_call(stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(infer_request(np.full((1, 1), 0.3), model="dawdle"), timeout=0.05)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    answer = stub.ModelInfer(infer_request(np.full((1, 1), 0.0), model="dawdle"))
    assert list(answer.raw_output_contents) == [np.zeros(1).tobytes()]


@pytest.mark.parametrize(
    ("model", "code", "expected"),
    [
        ("mod\u00e8le-\u00fc 100%", grpc.StatusCode.NOT_FOUND, "'mod\u00e8le-\u00fc 100%'"),
        ("picky", grpc.StatusCode.INTERNAL, "Picky refuses negative values"),
    ],
)
def test_grpc_message_round_trips_through_grpcio(
    stub: Stub, client: H2Client, model: str, code: Any, expected: str
) -> None:
    request = infer_request(-np.ones((1, 2)), model=model)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)
    error: Any = caught.value
    assert error.code() == code
    assert expected in error.details()
    # On the wire: printable ASCII only, '%' and non-ASCII percent-encoded UTF-8.
    wire = client.call(INFER, request.SerializeToString()).status["grpc-message"]
    assert all(0x20 <= ord(c) < 0x7F for c in wire)
    assert urllib.parse.unquote(wire) == error.details()
    if model != "picky":
        assert "mod%C3%A8le-%C3%BC 100%25" in wire


@pytest.mark.parametrize("name", ["\u00e9" * 3000, "x" * 20_000], ids=["non-ascii", "ascii"])
def test_a_long_error_message_keeps_its_status(stub: Stub, name: str) -> None:
    # grpcio drops a call whose header list passes 16 KiB (and some past 8 KiB), and
    # reports RESOURCE_EXHAUSTED instead of our status: the message must be cut to fit.
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelMetadata(pb.ModelMetadataRequest(name=name))
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details().startswith("No model named '" + name[:100])
    assert error.details().endswith("[truncated]")


# -- bounds ----------------------------------------------------------------------------


def test_reset_streams_leave_no_work_behind(fresh_server: ThreadServer) -> None:
    # "Rapid reset" (CVE-2023-44487): opening and resetting streams in a loop must not
    # leave work running past the MAX_CONCURRENT_STREAMS the server announced. A reset
    # call is cancelled (a queued one never reaches predict), so its place is free again.
    client = H2Client(fresh_server.port)
    try:
        limit = client.conn.remote_settings.max_concurrent_streams
        for _ in range(limit):
            stream_id = client.request(INFER, grpc_body(dawdle(60.0)))
            client.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
        client.flush()
        live = client.wait(client.request(LIVE, grpc_body(b"")))
        assert live.status["grpc-status"] == "0"
        entry = fresh_server.dataplane.registry.get("dawdle")
        # Each 60 s call ends as soon as its reset is read, not a minute later.
        wait_until(lambda: entry.inflight == 0, "the reset calls to end", timeout=30)
        connections = fresh_server.handle._connections
        wait_until(lambda: all(not c._tasks for c in connections), "no call task left")
    finally:
        client.close()

"""The gRPC server's HTTP/2 layer, seen by an independent HTTP/2 implementation (``h2``),
by hand-built frames, and by grpcio where the real client is the better witness.

The server is the real one (``start_grpc_server``, real DataPlane, real models) on its own
uvloop loop in a thread, so these blocking clients can talk to it from the test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import socket
import struct
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import hpack
import joblib
import numpy as np
import pytest
import uvloop
from grpc_helpers import FEATURES, save_grpc_models
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from h2_client import TIMEOUT, Answer, H2Client, RawClient, grpc_body
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from shipyard.serving.config import BatchingConfig, ModelSpec
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.grpc import GrpcServerHandle, start_grpc_server
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.serving.grpc.codec import decode_infer_response
from shipyard.serving.metrics import Metrics

T = TypeVar("T")
Stub = Any  # the generated stub is untyped

SERVICE = "/inference.GRPCInferenceService/"
INFER, LIVE = SERVICE + "ModelInfer", SERVICE + "ServerLive"
RNG = np.random.default_rng(11)


class ThreadServer:
    """``start_grpc_server`` on a uvloop loop of its own thread, as in a worker."""

    def __init__(self, plane: DataPlane, **options: int) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        try:
            starting = start_grpc_server(plane, "127.0.0.1", 0, **options)
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


def _plane(models: Path) -> DataPlane:
    plane = DataPlane(Metrics())
    for name in ("logistic", "shout", "picky", "dawdle"):
        spec = ModelSpec(uri=str(models / name), name=name)
        plane.add(plane.load_model(spec, BatchingConfig()))
    return plane


@pytest.fixture(scope="module")
def grpc_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(save_grpc_models(tmp_path_factory.mktemp("grpc-models")))


@pytest.fixture(scope="module")
def local_model(grpc_models: Path) -> Any:
    """The logistic model as sklearn loads it: what every answer is checked against."""
    return joblib.load(grpc_models / "logistic" / "model.joblib")


@pytest.fixture(scope="module")
def server(grpc_models: Path) -> Iterator[ThreadServer]:
    with ThreadServer(_plane(grpc_models)) as running:
        yield running


@pytest.fixture
def fresh_server(grpc_models: Path) -> Iterator[ThreadServer]:
    """A server of the test's own, for tests that stop it."""
    with ThreadServer(_plane(grpc_models)) as running:
        yield running


@pytest.fixture
def client(server: ThreadServer) -> Iterator[H2Client]:
    connection = H2Client(server.port)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def stub(server: ThreadServer) -> Iterator[Stub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the Dawdle predictor says it has started (see grpc_predictors)."""
    monkeypatch.setenv("GRPC_TEST_MARKS", str(tmp_path))
    return tmp_path


def _wait_for_mark(marks: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not any(marks.glob("started-*")):
        if time.monotonic() > deadline:
            raise AssertionError("the Dawdle predictor never started")
        time.sleep(0.005)


def _infer(rows: np.ndarray[Any, Any], *, model: str = "logistic", raw: bool = True) -> Any:
    request = pb.ModelInferRequest(model_name=model)
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=list(rows.shape))
    if raw:
        request.raw_input_contents.append(rows.astype("<f8").tobytes())
    else:
        tensor.contents.fp64_contents.extend(rows.ravel().tolist())
    return request


def _dawdle(seconds: float) -> bytes:
    data: bytes = _infer(np.full((1, 1), seconds), model="dawdle").SerializeToString()
    return data


def _outputs(answer: Answer) -> np.ndarray[Any, Any]:
    assert answer.status["grpc-status"] == "0", answer.status
    (output,) = decode_infer_response(pb.ModelInferResponse.FromString(answer.message())).outputs
    return np.asarray(output.data)


def _frames_on(frames: list[Any], stream_id: int, kind: type[Any] = object) -> list[Any]:
    return [f for f in frames if f.stream_id == stream_id and isinstance(f, kind)]


# -- flow control ----------------------------------------------------------------------


def test_response_data_stays_within_the_client_s_windows(
    server: ThreadServer, local_model: Any
) -> None:
    rows = RNG.normal(size=(12_000, 4))  # ~96 kB of INT64 back: more than 65535 + 3 x 1000
    client = H2Client(
        server.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 1000}, auto_ack=False
    )
    try:
        stream_id = client.request(INFER, grpc_body(_infer(rows).SerializeToString()))
        answer = client.answers[stream_id]

        def flowed() -> int:
            return sum(
                f.flow_controlled_length
                for f in _frames_on(client.received.frames, stream_id, DataFrame)
            )

        stream_credit, connection_credit = 1000, 65_535
        stalls = {"stream": 0, "connection": 0}
        for fence in range(100):
            limit = min(stream_credit, connection_credit)
            client.run_until(lambda n=limit: answer.done or flowed() >= n, "DATA up to the window")
            # Whatever the server wrote before answering this PING has arrived by now.
            client.ping(struct.pack(">Q", fence))
            if answer.done:
                break
            assert flowed() == limit  # it stopped exactly at the window, no further
            if stream_credit <= connection_credit:
                stalls["stream"] += 1
                # Three small stream grants, then one so large the connection binds.
                grant = 1000 if stalls["stream"] < 4 else 10_000_000
                client.conn.increment_flow_control_window(grant, stream_id=stream_id)
                stream_credit += grant
            else:
                stalls["connection"] += 1
                client.conn.increment_flow_control_window(10_000_000)
                connection_credit += 10_000_000
            client.flush()
        assert stalls == {"stream": 4, "connection": 1}
        assert flowed() == len(answer.data) > 65_535 + 3000
        data_frames = _frames_on(client.received.frames, stream_id, DataFrame)
        assert max(len(f.data) for f in data_frames) <= 16_384  # our default MAX_FRAME_SIZE
        np.testing.assert_array_equal(_outputs(answer), local_model.predict(rows))
    finally:
        client.close()


def test_a_request_larger_than_the_server_s_window(client: H2Client, local_model: Any) -> None:
    # 20 MB: past the 16 MiB the server grants a stream, so it must top the window up.
    rows = RNG.normal(size=(655_360, 4))
    answer = client.call(INFER, _infer(rows).SerializeToString())
    np.testing.assert_array_equal(_outputs(answer), local_model.predict(rows))
    updates = _frames_on(client.received.frames, 1, WindowUpdateFrame)
    assert updates, "the server never opened the stream's window again"


def test_a_large_request_from_grpcio(stub: Stub, local_model: Any) -> None:
    rows = RNG.normal(size=(160_000, 4))  # 5 MB, raw and as typed contents
    for raw in (True, False):
        (output,) = decode_infer_response(stub.ModelInfer(_infer(rows, raw=raw))).outputs
        np.testing.assert_array_equal(output.data, local_model.predict(rows))


# -- connection management -------------------------------------------------------------


def test_server_settings_come_first_and_settings_are_acknowledged(server: ThreadServer) -> None:
    raw = RawClient(server.port)  # sends the preface and an empty SETTINGS
    try:
        first = raw.read_until(lambda frames: len(frames) >= 1)[0]
        assert isinstance(first, SettingsFrame)
        assert "ACK" not in first.flags
        assert first.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] >= 100
        frames = raw.read_until(
            lambda frames: any(isinstance(f, SettingsFrame) and "ACK" in f.flags for f in frames)
        )
        assert all(f.stream_id == 0 for f in frames)
    finally:
        raw.close()


def test_ping_is_answered_with_the_same_payload(client: H2Client) -> None:
    for payload in (b"\x00shipyd\xff", b"12345678"):
        client.ping(payload)
    acks = [f for f in client.received.frames if isinstance(f, PingFrame)]
    assert [(f.opaque_data, "ACK" in f.flags) for f in acks] == [
        (b"\x00shipyd\xff", True),
        (b"12345678", True),
    ]


def test_many_concurrent_streams_on_one_connection(client: H2Client, local_model: Any) -> None:
    batches = [RNG.normal(size=(1 + i % 7, 4)) for i in range(200)]
    streams = [
        client.request(INFER, grpc_body(_infer(rows).SerializeToString())) for rows in batches
    ]
    client.run_until(lambda: all(client.answers[s].done for s in streams), "200 answers")
    for stream_id, rows in zip(streams, batches, strict=True):
        answer = client.answers[stream_id]
        np.testing.assert_array_equal(_outputs(answer), local_model.predict(rows))


def _inside_a_header_block(raw: RawClient) -> list[Frame]:
    headers = raw.headers_frame(1, _raw_headers(LIVE))
    headers.flags.discard("END_HEADERS")  # a CONTINUATION must come next
    return [headers, PingFrame(0, b"8 bytes!")]


def _push_promise(raw: RawClient) -> list[Frame]:
    promise = PushPromiseFrame(1, promised_stream_id=2, data=b"")
    promise.flags.add("END_HEADERS")
    return [raw.headers_frame(1, _raw_headers(LIVE), end_stream=False), promise]


# What the client sends, the GOAWAY error code, and the last stream id it names.
_VIOLATIONS: dict[str, tuple[Callable[[RawClient], list[Frame]], int, int]] = {
    "even stream id": (
        lambda raw: [raw.headers_frame(2, _raw_headers(LIVE), end_stream=False)],
        ErrorCodes.PROTOCOL_ERROR,
        0,
    ),
    "lower stream id": (
        lambda raw: [
            raw.headers_frame(5, _raw_headers(LIVE), end_stream=False),
            raw.headers_frame(3, _raw_headers(LIVE), end_stream=False),
        ],
        ErrorCodes.PROTOCOL_ERROR,
        5,
    ),
    "frame inside a header block": (_inside_a_header_block, ErrorCodes.PROTOCOL_ERROR, 0),
    "DATA on an idle stream": (
        lambda raw: [DataFrame(7, b"x")],
        ErrorCodes.PROTOCOL_ERROR,
        0,
    ),
    "window overflow": (
        lambda raw: [WindowUpdateFrame(0, 2**31 - 1)],
        ErrorCodes.FLOW_CONTROL_ERROR,
        0,
    ),
    "PUSH_PROMISE from a client": (_push_promise, ErrorCodes.PROTOCOL_ERROR, 1),
}


@pytest.mark.parametrize("case", list(_VIOLATIONS))
def test_protocol_violations_end_the_connection_with_goaway(
    server: ThreadServer, case: str
) -> None:
    build, code, last_stream = _VIOLATIONS[case]
    raw = RawClient(server.port)
    try:
        raw.send(*build(raw))
        frames = raw.read_until_closed()
    finally:
        raw.close()
    (goaway,) = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert (goaway.error_code, goaway.last_stream_id) == (code, last_stream)
    assert goaway is frames[-1]
    assert not [f for f in frames if isinstance(f, PingFrame)]  # nothing after the error


def test_http1_on_the_port_gets_400_and_is_closed(server: ThreadServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while chunk := sock.recv(4096):  # until the server closes
            received += chunk
    # The very first bytes: an HTTP/1 client reads nothing else as a status line.
    assert received.startswith(b"HTTP/1.1 400 "), received[:80]
    assert b"HTTP/2" in received


def test_stop_sends_goaway_finishes_the_call_and_refuses_new_connections(
    fresh_server: ThreadServer, marks: Path
) -> None:
    client = H2Client(fresh_server.port)
    try:
        stream_id = client.request(INFER, grpc_body(_dawdle(0.3)))
        _wait_for_mark(marks)
        stopped = fresh_server.submit(fresh_server.handle.stop(grace=TIMEOUT))
        client.run_until(lambda: client.goaway is not None, "GOAWAY")
        assert client.goaway is not None
        assert (client.goaway.error_code, client.goaway.last_stream_id) == (0, stream_id)
        np.testing.assert_array_equal(_outputs(client.wait(stream_id)), [[0.3]])
        client.wait_closed()
        stopped.result(TIMEOUT)
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fresh_server.port), timeout=TIMEOUT).close()


# -- frames ----------------------------------------------------------------------------


def test_a_header_block_in_continuation_frames(client: H2Client, local_model: Any) -> None:
    rows = FEATURES[:3]
    client.conn.max_outbound_frame_size = 40  # h2 splits what it sends to fit
    note = ("x-note", "continued " * 20)
    answer = client.wait(
        client.request(INFER, grpc_body(_infer(rows).SerializeToString()), extra=(note,))
    )
    assert len(_frames_on(client.sent.frames, 1, ContinuationFrame)) >= 3
    np.testing.assert_array_equal(_outputs(answer), local_model.predict(rows))


def test_padded_data_frames(client: H2Client, local_model: Any) -> None:
    rows = FEATURES[:50]
    body = grpc_body(_infer(rows).SerializeToString())
    client.conn.max_outbound_frame_size = 200  # several padded frames
    answer = client.wait(client.request(INFER, body, pad=17))
    padded = _frames_on(client.sent.frames, 1, DataFrame)
    assert len(padded) > 3 and all(f.pad_length == 17 for f in padded)
    np.testing.assert_array_equal(_outputs(answer), local_model.predict(rows))


def test_a_reset_stream_gets_no_answer_and_the_connection_goes_on(
    client: H2Client, marks: Path
) -> None:
    cancelled = client.request(INFER, grpc_body(_dawdle(0.3)))
    _wait_for_mark(marks)
    client.conn.reset_stream(cancelled, ErrorCodes.CANCEL)
    client.flush()
    # Started after the cancelled call, this one ends after it: by its answer, the
    # cancelled call has finished too, and anything it wrote would have arrived.
    later = client.request(INFER, grpc_body(_dawdle(0.3)))
    live = client.call(LIVE, pb.ServerLiveRequest().SerializeToString())
    assert pb.ServerLiveResponse.FromString(live.message()).live is True
    np.testing.assert_array_equal(_outputs(client.wait(later)), [[0.3]])
    client.ping(b"finally!")
    assert _frames_on(client.received.frames, cancelled) == []


def test_a_smaller_header_table_is_announced_in_the_next_header_block(
    server: ThreadServer,
) -> None:
    client = H2Client(server.port, settings={SettingCodes.HEADER_TABLE_SIZE: 0})
    try:
        answer = client.call(LIVE, pb.ServerLiveRequest().SerializeToString())
        assert pb.ServerLiveResponse.FromString(answer.message()).live is True
        first = _frames_on(client.received.frames, 1, HeadersFrame)[0]
        assert first.data[:1] == b"\x20"  # RFC 7541 6.3: dynamic table size update to 0
    finally:
        client.close()


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
    assert [type(f) for f in _frames_on(client.received.frames, stream_id)] == [HeadersFrame]
    assert answer.headers.get("grpc-message")  # every refusal says why
    # The connection goes on serving.
    rows = FEATURES[:2]
    again = client.call(INFER, _infer(rows).SerializeToString())
    np.testing.assert_array_equal(_outputs(again), local_model.predict(rows))


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    return zlib.compress(data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_messages(client: H2Client, local_model: Any, encoding: str) -> None:
    rows = np.tile(FEATURES[:4], (500, 1))  # repetitive: compresses well
    message = _infer(rows, raw=False).SerializeToString()
    packed = _compress(message, encoding)
    assert len(packed) < len(message) // 4
    stream_id = client.request(
        INFER, grpc_body(packed, compressed=True), extra=(("grpc-encoding", encoding),)
    )
    np.testing.assert_array_equal(_outputs(client.wait(stream_id)), local_model.predict(rows))


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
        answer = stub.ModelInfer(_infer(rows, raw=False))
        (output,) = decode_infer_response(answer).outputs
        np.testing.assert_array_equal(output.data, local_model.predict(rows))


# -- deadlines and errors ------------------------------------------------------------------


def test_grpc_timeout_ends_the_call_and_the_connection_goes_on(client: H2Client) -> None:
    late = client.request(INFER, grpc_body(_dawdle(0.3)), extra=(("grpc-timeout", "50m"),))
    answer = client.wait(late)
    assert answer.status["grpc-status"] == "4"  # DEADLINE_EXCEEDED, from the server
    assert not answer.data
    # Started after it, this call ends after the expired call's predictor returns: by
    # then a late answer on the expired stream would have arrived (h2 would reject it).
    ok = client.call(INFER, _dawdle(0.3), extra=(("grpc-timeout", "20S"),))
    np.testing.assert_array_equal(_outputs(ok), [[0.3]])
    client.ping(b"in order")
    assert [type(f) for f in _frames_on(client.received.frames, late)] == [HeadersFrame]


def test_grpcio_deadline_then_the_next_call(stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(_infer(np.full((1, 1), 0.3), model="dawdle"), timeout=0.05)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    answer = stub.ModelInfer(_infer(np.full((1, 1), 0.0), model="dawdle"))
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
    request = _infer(-np.ones((1, 2)), model=model)
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


def test_a_settings_change_reopens_a_window_of_zero(server: ThreadServer, local_model: Any) -> None:
    client = H2Client(server.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 0})
    try:
        rows = FEATURES[:20]
        stream_id = client.request(INFER, grpc_body(_infer(rows).SerializeToString()))
        answer = client.answers[stream_id]
        client.run_until(lambda: answer.headers is not None, "the response headers")
        client.ping(b"no data!")
        assert not answer.data and not answer.done  # no window: the server waits
        client.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 65_535})
        client.flush()
        np.testing.assert_array_equal(_outputs(client.wait(stream_id)), local_model.predict(rows))
    finally:
        client.close()


def test_padded_headers_with_priority(server: ThreadServer) -> None:
    raw = RawClient(server.port)
    try:
        headers = raw.headers_frame(1, _raw_headers(LIVE), end_stream=False)
        headers.flags.add("PADDED")
        headers.flags.add("PRIORITY")
        headers.pad_length, headers.depends_on, headers.stream_weight = 9, 0, 200
        body = DataFrame(1, grpc_body(pb.ServerLiveRequest().SerializeToString()))
        body.flags.add("END_STREAM")
        raw.send(headers, body)
        frames = raw.read_until(
            lambda frames: any("END_STREAM" in f.flags for f in _frames_on(frames, 1))
        )
    finally:
        raw.close()
    decoder = hpack.Decoder()
    blocks = [
        {str(k): str(v) for k, v in decoder.decode(f.data)}
        for f in _frames_on(frames, 1, HeadersFrame)
    ]
    assert [b.get(":status") or b.get("grpc-status") for b in blocks] == ["200", "0"]
    (data,) = _frames_on(frames, 1, DataFrame)
    assert pb.ServerLiveResponse.FromString(data.data[5:]).live is True


def _raw_headers(path: str) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
    ]


def test_a_request_over_the_limit_is_answered_early(grpc_models: Path, local_model: Any) -> None:
    with ThreadServer(_plane(grpc_models), max_message_bytes=10_000) as small:
        client = H2Client(small.port)
        try:
            rows = RNG.normal(size=(5000, 4))  # 160 kB in ten DATA frames
            client.conn.max_outbound_frame_size = 16_384
            big = client.wait(client.request(INFER, grpc_body(_infer(rows).SerializeToString())))
            assert big.status["grpc-status"] == "8"  # RESOURCE_EXHAUSTED
            assert "10000 bytes" in big.status["grpc-message"]
            # Answered before the body ended: the server tells us to stop sending (NO_ERROR),
            # ignores what was already on its way, and goes on serving the connection.
            client.ping(b"rst sent")
            (reset,) = _frames_on(client.received.frames, 1, RstStreamFrame)
            assert reset.error_code == ErrorCodes.NO_ERROR
            again = client.call(INFER, _infer(rows[:3]).SerializeToString())
            np.testing.assert_array_equal(_outputs(again), local_model.predict(rows[:3]))
        finally:
            client.close()


def test_streams_past_the_concurrency_limit_are_refused(server: ThreadServer) -> None:
    raw = RawClient(server.port)
    try:
        raw.read_until(lambda frames: any(isinstance(f, SettingsFrame) for f in frames))
        limit = raw.received.frames[0].settings[SettingsFrame.MAX_CONCURRENT_STREAMS]
        # Every stream left open (no END_STREAM), one past the limit.
        ids = [1 + 2 * i for i in range(limit + 1)]
        raw.send(*(raw.headers_frame(i, _raw_headers(LIVE), end_stream=False) for i in ids))
        raw.send(PingFrame(0, b"after..."))
        frames = raw.read_until(
            lambda frames: any(isinstance(f, PingFrame) and "ACK" in f.flags for f in frames)
        )
    finally:
        raw.close()
    resets = [f for f in frames if isinstance(f, RstStreamFrame)]
    assert [(f.stream_id, f.error_code) for f in resets] == [(ids[-1], ErrorCodes.REFUSED_STREAM)]


def test_stop_hangs_up_on_a_connection_that_has_not_spoken(fresh_server: ThreadServer) -> None:
    with socket.create_connection(("127.0.0.1", fresh_server.port), timeout=TIMEOUT) as idle:
        idle.settimeout(TIMEOUT)
        # Accepted in order: once a later connection is served, this one is accepted too.
        H2Client(fresh_server.port).close()
        fresh_server.run(fresh_server.handle.stop(grace=TIMEOUT))
        # Not even our SETTINGS were sent: a GOAWAY now would be the first frame, which
        # HTTP/2 forbids. The connection just closes.
        assert idle.recv(4096) == b""

"""The gRPC server's HTTP/2 transport (flow control, settings, streams, frames, shutdown),
seen by an independent HTTP/2 implementation (``h2``) and by hand-built frames.

The server is the real one on a thread of its own (see ``h2_server``).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hpack
import numpy as np
import pytest
from grpc_helpers import FEATURES, infer_request
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from h2_client import TIMEOUT, H2Client, RawClient, grpc_body
from h2_fixtures import *  # noqa: F403  (shared fixtures: pytest finds them here)
from h2_server import (
    INFER,
    LIVE,
    ThreadServer,
    dawdle,
    frames_on,
    outputs,
    raw_headers,
    wait_for_mark,
)
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

from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb

RNG = np.random.default_rng(11)


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the Dawdle predictor says it has started (see grpc_predictors)."""
    monkeypatch.setenv("GRPC_TEST_MARKS", str(tmp_path))
    return tmp_path


# -- flow control ----------------------------------------------------------------------


def test_response_data_stays_within_the_client_s_windows(
    server: ThreadServer, local_model: Any
) -> None:
    rows = RNG.normal(size=(12_000, 4))  # ~96 kB of INT64 back: more than 65535 + 3 x 1000
    client = H2Client(
        server.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 1000}, auto_ack=False
    )
    try:
        stream_id = client.request(INFER, grpc_body(infer_request(rows).SerializeToString()))
        answer = client.answers[stream_id]

        def flowed() -> int:
            return sum(
                f.flow_controlled_length
                for f in frames_on(client.received.frames, stream_id, DataFrame)
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
        data_frames = frames_on(client.received.frames, stream_id, DataFrame)
        assert max(len(f.data) for f in data_frames) <= 16_384  # our default MAX_FRAME_SIZE
        np.testing.assert_array_equal(outputs(answer), local_model.predict(rows))
    finally:
        client.close()


def test_a_request_larger_than_the_server_s_window(client: H2Client, local_model: Any) -> None:
    # 20 MB: past the 16 MiB the server grants a stream, so it must top the window up.
    rows = RNG.normal(size=(655_360, 4))
    answer = client.call(INFER, infer_request(rows).SerializeToString())
    np.testing.assert_array_equal(outputs(answer), local_model.predict(rows))
    updates = frames_on(client.received.frames, 1, WindowUpdateFrame)
    assert updates, "the server never opened the stream's window again"


def test_a_settings_change_reopens_a_window_of_zero(server: ThreadServer, local_model: Any) -> None:
    client = H2Client(server.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 0})
    try:
        rows = FEATURES[:20]
        stream_id = client.request(INFER, grpc_body(infer_request(rows).SerializeToString()))
        answer = client.answers[stream_id]
        client.run_until(lambda: answer.headers is not None, "the response headers")
        client.ping(b"no data!")
        assert not answer.data and not answer.done  # no window: the server waits
        client.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 65_535})
        client.flush()
        np.testing.assert_array_equal(outputs(client.wait(stream_id)), local_model.predict(rows))
    finally:
        client.close()


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
        client.request(INFER, grpc_body(infer_request(rows).SerializeToString()))
        for rows in batches
    ]
    client.run_until(lambda: all(client.answers[s].done for s in streams), "200 answers")
    for stream_id, rows in zip(streams, batches, strict=True):
        answer = client.answers[stream_id]
        np.testing.assert_array_equal(outputs(answer), local_model.predict(rows))


def test_streams_past_the_concurrency_limit_are_refused(server: ThreadServer) -> None:
    raw = RawClient(server.port)
    try:
        raw.read_until(lambda frames: any(isinstance(f, SettingsFrame) for f in frames))
        limit = raw.received.frames[0].settings[SettingsFrame.MAX_CONCURRENT_STREAMS]
        # Every stream left open (no END_STREAM), one past the limit.
        ids = [1 + 2 * i for i in range(limit + 1)]
        raw.send(*(raw.headers_frame(i, raw_headers(LIVE), end_stream=False) for i in ids))
        raw.send(PingFrame(0, b"after..."))
        frames = raw.read_until(
            lambda frames: any(isinstance(f, PingFrame) and "ACK" in f.flags for f in frames)
        )
    finally:
        raw.close()
    resets = [f for f in frames if isinstance(f, RstStreamFrame)]
    assert [(f.stream_id, f.error_code) for f in resets] == [(ids[-1], ErrorCodes.REFUSED_STREAM)]


def _inside_a_header_block(raw: RawClient) -> list[Frame]:
    headers = raw.headers_frame(1, raw_headers(LIVE))
    headers.flags.discard("END_HEADERS")  # a CONTINUATION must come next
    return [headers, PingFrame(0, b"8 bytes!")]


def _push_promise(raw: RawClient) -> list[Frame]:
    promise = PushPromiseFrame(1, promised_stream_id=2, data=b"")
    promise.flags.add("END_HEADERS")
    return [raw.headers_frame(1, raw_headers(LIVE), end_stream=False), promise]


def _headers_after_end_stream(raw: RawClient) -> list[Frame]:
    body = DataFrame(1, grpc_body(dawdle(60.0)))  # in flight when the HEADERS come
    body.flags.add("END_STREAM")
    return [
        raw.headers_frame(1, raw_headers(INFER), end_stream=False),
        body,
        raw.headers_frame(1, [("x-again", "1")], end_stream=True),
    ]


# What the client sends, the GOAWAY error code, and the last stream id it names.
_VIOLATIONS: dict[str, tuple[Callable[[RawClient], list[Frame]], int, int]] = {
    "even stream id": (
        lambda raw: [raw.headers_frame(2, raw_headers(LIVE), end_stream=False)],
        ErrorCodes.PROTOCOL_ERROR,
        0,
    ),
    "lower stream id": (
        lambda raw: [
            raw.headers_frame(5, raw_headers(LIVE), end_stream=False),
            raw.headers_frame(3, raw_headers(LIVE), end_stream=False),
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
    "HEADERS after END_STREAM": (_headers_after_end_stream, ErrorCodes.STREAM_CLOSED, 1),
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
        stream_id = client.request(INFER, grpc_body(dawdle(0.3)))
        wait_for_mark(marks)
        stopped = fresh_server.submit(fresh_server.handle.stop(grace=TIMEOUT))
        client.run_until(lambda: client.goaway is not None, "GOAWAY")
        assert client.goaway is not None
        assert (client.goaway.error_code, client.goaway.last_stream_id) == (0, stream_id)
        np.testing.assert_array_equal(outputs(client.wait(stream_id)), [[0.3]])
        client.wait_closed()
        stopped.result(TIMEOUT)
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fresh_server.port), timeout=TIMEOUT).close()


def test_stop_hangs_up_on_a_connection_that_has_not_spoken(fresh_server: ThreadServer) -> None:
    with socket.create_connection(("127.0.0.1", fresh_server.port), timeout=TIMEOUT) as idle:
        idle.settimeout(TIMEOUT)
        # Accepted in order: once a later connection is served, this one is accepted too.
        H2Client(fresh_server.port).close()
        fresh_server.run(fresh_server.handle.stop(grace=TIMEOUT))
        # Not even our SETTINGS were sent: a GOAWAY now would be the first frame, which
        # HTTP/2 forbids. The connection just closes.
        assert idle.recv(4096) == b""


# -- frames ----------------------------------------------------------------------------


def test_a_header_block_in_continuation_frames(client: H2Client, local_model: Any) -> None:
    rows = FEATURES[:3]
    client.conn.max_outbound_frame_size = 40  # h2 splits what it sends to fit
    note = ("x-note", "continued " * 20)
    answer = client.wait(
        client.request(INFER, grpc_body(infer_request(rows).SerializeToString()), extra=(note,))
    )
    assert len(frames_on(client.sent.frames, 1, ContinuationFrame)) >= 3
    np.testing.assert_array_equal(outputs(answer), local_model.predict(rows))


def test_padded_data_frames(client: H2Client, local_model: Any) -> None:
    rows = FEATURES[:50]
    body = grpc_body(infer_request(rows).SerializeToString())
    client.conn.max_outbound_frame_size = 200  # several padded frames
    answer = client.wait(client.request(INFER, body, pad=17))
    padded = frames_on(client.sent.frames, 1, DataFrame)
    assert len(padded) > 3 and all(f.pad_length == 17 for f in padded)
    np.testing.assert_array_equal(outputs(answer), local_model.predict(rows))


def test_padded_headers_with_priority(server: ThreadServer) -> None:
    raw = RawClient(server.port)
    try:
        headers = raw.headers_frame(1, raw_headers(LIVE), end_stream=False)
        headers.flags.add("PADDED")
        headers.flags.add("PRIORITY")
        headers.pad_length, headers.depends_on, headers.stream_weight = 9, 0, 200
        body = DataFrame(1, grpc_body(pb.ServerLiveRequest().SerializeToString()))
        body.flags.add("END_STREAM")
        raw.send(headers, body)
        frames = raw.read_until(
            lambda frames: any("END_STREAM" in f.flags for f in frames_on(frames, 1))
        )
    finally:
        raw.close()
    decoder = hpack.Decoder()
    blocks = [
        {str(k): str(v) for k, v in decoder.decode(f.data)}
        for f in frames_on(frames, 1, HeadersFrame)
    ]
    assert [b.get(":status") or b.get("grpc-status") for b in blocks] == ["200", "0"]
    (data,) = frames_on(frames, 1, DataFrame)
    assert pb.ServerLiveResponse.FromString(data.data[5:]).live is True


def test_a_reset_stream_gets_no_answer_and_the_connection_goes_on(
    client: H2Client, marks: Path
) -> None:
    cancelled = client.request(INFER, grpc_body(dawdle(0.3)))
    wait_for_mark(marks)
    client.conn.reset_stream(cancelled, ErrorCodes.CANCEL)
    client.flush()
    # Started after the cancelled call, this one ends after it: by its answer, the
    # cancelled call has finished too, and anything it wrote would have arrived.
    later = client.request(INFER, grpc_body(dawdle(0.3)))
    live = client.call(LIVE, pb.ServerLiveRequest().SerializeToString())
    assert pb.ServerLiveResponse.FromString(live.message()).live is True
    np.testing.assert_array_equal(outputs(client.wait(later)), [[0.3]])
    client.ping(b"finally!")
    assert frames_on(client.received.frames, cancelled) == []


def test_a_smaller_header_table_is_announced_in_the_next_header_block(
    server: ThreadServer,
) -> None:
    client = H2Client(server.port, settings={SettingCodes.HEADER_TABLE_SIZE: 0})
    try:
        answer = client.call(LIVE, pb.ServerLiveRequest().SerializeToString())
        assert pb.ServerLiveResponse.FromString(answer.message()).live is True
        first = frames_on(client.received.frames, 1, HeadersFrame)[0]
        assert first.data[:1] == b"\x20"  # RFC 7541 6.3: dynamic table size update to 0
    finally:
        client.close()

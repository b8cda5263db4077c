"""Per-call HTTP/2 framing cost: our gRPC connection against the ``h2`` library's state
machine, on the same event loop, with the same bytes.

Why this exists: ``serving/grpc/_http2.py`` is our own HTTP/2 server code. The reviewer's
question is why not the ``h2`` library (sans-IO, well tested) under the same asyncio
protocol. This measures what each costs per unary call with everything else taken away:
no sockets, no data plane, no protobuf. A recorded client byte stream (preface, SETTINGS,
then per call one HEADERS and one DATA frame with a 100-byte gRPC message, as grpcio
sends them) is fed call by call into

- ``ours``: a ``Http2Connection`` whose ``request_received`` answers with
  ``send_response`` (response headers, the same 100 bytes, grpc-status trailers), and
- ``h2``: an ``h2.connection.H2Connection`` server whose ``StreamEnded`` event answers
  with ``send_headers`` / ``send_data`` / ``send_headers(end_stream)``, acknowledging the
  received data for flow control, and ``data_to_send()`` written out,

both on one uvloop loop, alternating in rounds; the per-call time is the median round's.
Run alone: ``.venv/bin/python benchmarks/harness/framing.py [--calls N --rounds R]``;
``make bench`` runs it as the ``framing`` section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import time
from typing import Any

_CALLS = 5_000
_ROUNDS = 5
_PATH = "/inference.GRPCInferenceService/ModelInfer"
_MESSAGE = b"\x00" + struct.pack(">L", 100) + bytes(range(100))
_REQUEST_HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", _PATH),
    (":authority", "127.0.0.1:8081"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
    ("user-agent", "grpc-python/1.85.1 grpc-c/50.0.0 (linux; chttp2)"),
    ("grpc-accept-encoding", "identity, deflate, gzip"),
]
_RESPONSE_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]
_TRAILERS = [("grpc-status", "0")]


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return struct.pack(">L B L", (len(payload) << 8) | kind, flags, stream_id) + payload


def client_bytes(calls: int) -> tuple[bytes, list[bytes]]:
    """The connection start, and each call's HEADERS + DATA(END_STREAM) frames."""
    import hpack

    encoder = hpack.Encoder()
    # Large receive windows (as grpcio grants), so neither side ever waits for one.
    settings = _frame(4, 0, 0, struct.pack(">HL", 0x4, 1 << 24))
    grow = _frame(8, 0, 0, struct.pack(">L", (1 << 30) - 65_535))
    start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + grow
    per_call = []
    for i in range(calls):
        stream_id = 2 * i + 1
        block = encoder.encode(_REQUEST_HEADERS)
        per_call.append(_frame(1, 0x4, stream_id, block) + _frame(0, 0x1, stream_id, _MESSAGE))
    return start, per_call


class _Sink:
    """A transport that keeps only a byte count (both sides write to one)."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _ours(start: bytes, calls: list[bytes]) -> tuple[float, int]:
    from shipyard.serving.grpc._http2 import Http2Connection, encode_header_block

    headers = encode_header_block(_RESPONSE_HEADERS)
    trailers = encode_header_block(_TRAILERS)

    class Answering(Http2Connection):
        def request_received(self, stream_id: int, _h: dict[str, str], body: bytes) -> None:
            self.send_response(stream_id, headers, body, trailers)

    sink = _Sink()
    conn = Answering(1 << 20)
    conn.connection_made(sink)  # type: ignore[arg-type]
    conn.data_received(start)
    began = time.perf_counter()
    for data in calls:
        conn.data_received(data)
    return time.perf_counter() - began, sink.written


def _h2(start: bytes, calls: list[bytes]) -> tuple[float, int]:
    import h2.config
    import h2.connection
    import h2.events

    sink = _Sink()
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    conn.initiate_connection()
    sink.write(conn.data_to_send())
    bodies: dict[int, bytes] = {}

    def received(data: bytes) -> None:
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                body = bodies.pop(event.stream_id, b"")
                conn.send_headers(event.stream_id, _RESPONSE_HEADERS)
                conn.send_data(event.stream_id, body)
                conn.send_headers(event.stream_id, _TRAILERS, end_stream=True)
        sink.write(conn.data_to_send())

    received(start)
    began = time.perf_counter()
    for data in calls:
        received(data)
    return time.perf_counter() - began, sink.written


async def _measure(calls: int, rounds: int) -> dict[str, Any]:
    start, per_call = client_bytes(calls)
    times: dict[str, list[float]] = {"ours": [], "h2": []}
    written: dict[str, int] = {}
    for _ in range(rounds):
        for name, run in (("ours", _ours), ("h2", _h2)):
            elapsed, written[name] = run(start, per_call)
            times[name].append(elapsed / calls * 1e6)
            await asyncio.sleep(0)  # both on this loop, one after the other
    ours, theirs = statistics.median(times["ours"]), statistics.median(times["h2"])
    return {
        "calls": calls,
        "rounds": rounds,
        "us_per_call": {"ours": ours, "h2": theirs},
        "all_rounds_us": times,
        "bytes_written": written,
        "ratio_h2_over_ours": theirs / ours,
    }


def measure(calls: int = _CALLS, rounds: int = _ROUNDS) -> dict[str, Any]:
    """Median microseconds per unary call for each state machine, and their ratio."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is in the serve extra
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        found = runner.run(_measure(calls, rounds))
    found["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    found["load"] = round(os.getloadavg()[0], 1)
    return found


def render(r: dict[str, Any]) -> list[str]:
    """The RESULTS.md section (nothing when the section was never measured)."""
    f = r.get("framing")
    if not f:
        return []
    us = f["us_per_call"]
    return [
        "## HTTP/2 framing per gRPC call: ours vs the h2 library",
        "",
        f"Measured {f.get('date', '?')}, load average {f.get('load', '?')}. The same recorded "
        f"client bytes ({f['calls']:,} unary calls, 100-byte messages) fed call by call into "
        "each server-side state machine on one uvloop loop, no sockets, no data plane "
        f"(`benchmarks/harness/framing.py`); median of {f['rounds']} interleaved rounds.",
        "",
        "| state machine | µs per call | ratio |",
        "|---|---:|---:|",
        f"| Shipyard `Http2Connection` | {us['ours']:.1f} | 1.00 |",
        f"| `h2.connection.H2Connection` | {us['h2']:.1f} | {f['ratio_h2_over_ours']:.1f}x |",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--calls", type=int, default=_CALLS)
    p.add_argument("--rounds", type=int, default=_ROUNDS)
    args = p.parse_args(argv)
    print(json.dumps(measure(args.calls, args.rounds), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A worker's cap on request bytes held over all its connections (``--max-buffered-bytes``):
a flood of connections each sending most of a large body, over HTTP/1.1 or as HTTP/2
streams that never end, fills it, and then requests are refused cleanly (503 with
Retry-After, RST_STREAM REFUSED_STREAM) while the worker's memory stays bounded; once the
flooders leave, every byte is given back and requests are answered again."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.testing import ServerProcess, start_server, wait_until

CAP = 4 * 2**20  # --max-buffered-bytes
BODY = 2 * 2**20  # --max-body-size
SENT = 900_000  # what each flooder sends of its body: never all of it
FLOODERS = 40  # x SENT = 36 MB: nine times the cap
MEMORY_BOUND = 24 * 2**20  # the worker grows by less than this (the cap plus slack)
ROW = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, DATA, SETTINGS, RST_STREAM = 1, 0, 4, 3
REFUSED_STREAM = 7


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[ServerProcess]:
    args = ["--max-buffered-bytes", str(CAP), "--max-body-size", str(BODY)]
    with start_server(models_dir / "forest", workers=1, grpc=True, args=args) as running:
        yield running


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _large_request(server: ServerProcess) -> httpx.Response:
    """A valid request with 1.5 MB of whitespace: more than what is left of a full cap
    (a refused chunk is far smaller), less than the body limit."""
    body = json.dumps(ROW).encode() + b" " * 1_500_000
    headers = {"content-type": "application/json"}
    return httpx.post(
        f"{server.url}/v2/models/forest/infer", content=body, headers=headers, timeout=30
    )


def _answered(server: ServerProcess) -> bool:
    response = httpx.post(f"{server.url}/v2/models/forest/infer", json=ROW, timeout=30)
    return response.status_code == 200


def _read_some(sock: socket.socket) -> bytes:
    sock.settimeout(0.5)
    received = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _http_flooder(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=30)
    head = (
        "POST /v2/models/forest/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {BODY}\r\n\r\n"
    )
    sock.sendall(head.encode() + b" " * SENT)
    return sock


def test_http_bodies_past_the_cap_get_503_and_the_bytes_come_back(server: ServerProcess) -> None:
    pid = int(server.status()["workers"][0]["pid"])
    before = _rss(pid)
    flooders: list[socket.socket] = []
    try:
        for _ in range(FLOODERS):
            flooders.append(_http_flooder(server))
        peak = _rss(pid)
        refused = [r for r in (_read_some(s) for s in flooders) if r]
        # The cap holds four flooders' bytes; the others were refused at once.
        assert len(refused) >= FLOODERS - CAP // SENT, len(refused)
        assert all(r.startswith(b"HTTP/1.1 503") for r in refused), refused[0][:200]
        assert all(b"retry-after: 1" in r and b"connection: close" in r for r in refused)
        assert b"--max-buffered-bytes" in refused[0]
        # Full: a real client's request is refused cleanly too.
        busy = _large_request(server)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "--max-buffered-bytes" in busy.json()["error"]
        assert peak - before < MEMORY_BOUND, f"grew by {(peak - before) / 2**20:.0f} MiB"
    finally:
        for sock in flooders:
            sock.close()
    # The flooders left: what they held is given back (nothing leaks).
    wait_until(lambda: _answered(server), "requests to be answered again", timeout=30)
    assert _large_request(server).status_code == 200


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">L B L", (len(payload) << 8) | kind, flags, stream_id) + payload


def _h2_flooder(server: ServerProcess) -> socket.socket:
    from hpack import Encoder

    assert server.grpc_port is not None
    block = Encoder().encode(
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/inference.GRPCInferenceService/ModelInfer"),
            (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"),
        ]
    )
    sock = socket.create_connection(("127.0.0.1", server.grpc_port), timeout=30)
    # One call whose message never ends: its DATA stays within the windows we are given.
    chunks = b"".join(_frame(DATA, 0, 1, b"\0" * 15_000) for _ in range(SENT // 15_000))
    sock.sendall(PREFACE + _frame(SETTINGS, 0, 0) + _frame(HEADERS, 0x4, 1, block) + chunks)
    return sock


def _refused_streams(received: bytes) -> list[int]:
    """The error codes of the RST_STREAM frames in ``received``."""
    codes, offset = [], 0
    while offset + 9 <= len(received):
        head, _, _ = struct.unpack_from(">L B L", received, offset)
        length, kind = head >> 8, head & 0xFF
        if kind == RST_STREAM and offset + 13 <= len(received):
            codes.append(int(struct.unpack_from(">L", received, offset + 9)[0]))
        offset += 9 + length
    return codes


def test_http2_streams_past_the_cap_are_refused_and_the_bytes_come_back(
    server: ServerProcess,
) -> None:
    import grpc

    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc

    pid = int(server.status()["workers"][0]["pid"])
    before = _rss(pid)
    flooders: list[socket.socket] = []
    try:
        for _ in range(FLOODERS):
            flooders.append(_h2_flooder(server))
        peak = _rss(pid)
        codes = [_refused_streams(_read_some(s)) for s in flooders]
        refused = [c for c in codes if c]
        assert len(refused) >= FLOODERS - CAP // SENT, codes
        assert all(c == [REFUSED_STREAM] for c in refused), refused
        assert peak - before < MEMORY_BOUND, f"grew by {(peak - before) / 2**20:.0f} MiB"
        # Shared with HTTP: the worker is full for both transports.
        assert _large_request(server).status_code == 503
    finally:
        for sock in flooders:
            sock.close()
    wait_until(lambda: _answered(server), "requests to be answered again", timeout=30)
    assert _large_request(server).status_code == 200
    request = pb.ModelInferRequest(model_name="forest")
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[1, 4])
    tensor.contents.fp64_contents.extend([1.0, 2.0, 3.0, 4.0])
    assert server.grpc_port is not None
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        answer = stub.ModelInfer(request, timeout=30)
    assert answer.model_name == "forest" and len(answer.outputs) == 1


def test_the_default_cap_scales_with_the_body_limit() -> None:
    from shipyard.serving.config import ModelSpec, ServerConfig

    def config(**values: int) -> ServerConfig:
        return ServerConfig(models=[ModelSpec(uri="m")], **values)  # type: ignore[arg-type]

    assert config().max_body_size == 32 * 2**20
    assert config().buffered_bytes_cap() == 256 * 2**20
    assert config(max_body_size=2**30).buffered_bytes_cap() == 4 * 2**30
    assert config(max_buffered_bytes=10).buffered_bytes_cap() == 10

"""The direct HTTP path (``serving.http._direct``): POST requests skip the ASGI cycle.

Real sockets against real servers. Each case sends the same raw bytes to a server on the
direct path (the default) and to one with ``SHIPYARD_FAST_HTTP=off`` (every request
through the ASGI app, as before), reads until the server closes, and requires the same
bytes back (the ``date`` header aside), then checks what the answer must say. So the
direct path answers keep-alive, pipelining (mixed with GET requests, which stay on the
ASGI path), chunked bodies, ``Expect: 100-continue``, HTTP/1.0, every 4xx and the
body limits exactly as the ASGI path does.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.testing import ServerProcess, start_server, wait_until

LIMIT = 4096  # both servers' --max-body-size
BODY = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [0.5] * 8}]}
).encode()
INFER = "/v2/models/forest/infer"


def _post(
    path: str = INFER,
    body: bytes = BODY,
    *,
    close: bool = False,
    extra: str = "",
    version: str = "1.1",
) -> bytes:
    head = f"POST {path} HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n{extra}"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def _chunked(body: bytes, pieces: int = 3, close: bool = True) -> bytes:
    step = -(-len(body) // pieces)
    out = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    out += "Transfer-Encoding: chunked\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    raw = out.encode()
    for i in range(0, len(body), step):
        part = body[i : i + step]
        raw += b"%x\r\n" % len(part) + part + b"\r\n"
    return raw + b"0\r\n\r\n"


GET_LIVE = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"

#: name -> what the client sends, in one write (pipelined when several requests).
CASES: dict[str, bytes] = {
    "one request, then close": _post(close=True),
    "keep-alive: three requests pipelined": _post() + _post() + _post(close=True),
    "pipelined with GET requests between": GET_LIVE + _post() + GET_LIVE + _post(close=True),
    "versioned route": _post("/v2/models/forest/versions/1/infer", close=True),
    "chunked body": _chunked(BODY),
    "chunked body, then another request": _chunked(BODY, close=False) + _post(close=True),
    "chunked body over the limit": _chunked(b" " * (LIMIT + 10) + BODY, pieces=4),
    "declared length over the limit": _post(body=b" " * (LIMIT + 1)),
    "HTTP/1.0": _post(version="1.0"),
    "malformed JSON": _post(body=b'{"inputs": [', close=True),
    "not an infer request": _post(body=b'{"x": 1}', close=True),
    "unknown model": _post("/v2/models/nope/infer", close=True),
    "percent-encoded model name": _post("/v2/models/%66orest/infer", close=True),
    "wrong content type": _post(extra="Content-Type: text/csv\r\n", close=True).replace(
        b"Content-Type: application/json\r\n", b"", 1
    ),
    "POST on a GET route: 405 with Allow": _post("/v2/health/live", close=True),
    "no route": _post("/no/such/route", close=True),
    "mlflow /invocations": _post("/invocations", b'{"inputs": [[0.5, 0.5, 0.5, 0.5]]}', close=True),
    "mlflow /invocations with a bad body": _post("/invocations", b'{"nope": 1}', close=True),
    "kserve v1": _post("/v1/models/forest:predict", b'{"instances": [[1, 2, 3, 4]]}', close=True),
    "seldon": _post("/api/v0.1/predictions", b'{"data": {"ndarray": [[1, 2, 3, 4]]}}', close=True),
    "a bad request line": b"POST /v2/models/forest/infer HTTP/9.9\r\n\r\n",
}


@pytest.fixture(scope="module")
def servers(models_dir: Path) -> Iterator[dict[str, ServerProcess]]:
    args = ["--max-body-size", str(LIMIT)]
    with (
        start_server(models_dir / "forest", args=args) as direct,
        start_server(models_dir / "forest", args=args, env={"SHIPYARD_FAST_HTTP": "off"}) as asgi,
    ):
        yield {"direct": direct, "asgi": asgi}


def _exchange(port: int, sent: bytes) -> bytes:
    """Send ``sent`` and read until the server closes (30 s bound per read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(sent)
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def _answers(raw: bytes) -> list[tuple[bytes, bytes]]:
    """The (header block, body) of each answer in ``raw``, by Content-Length."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, raw
        found = re.search(rb"(?im)^content-length: *(\d+)", head)
        size = int(found.group(1)) if found else 0
        out.append((head, rest[:size]))
        raw = rest[size:]
    return out


def _undated(raw: bytes) -> bytes:
    return re.sub(rb"(?im)^date: [^\r]*\r\n", b"", raw)


@pytest.mark.parametrize("case", list(CASES))
def test_the_direct_path_answers_as_the_asgi_path(
    servers: dict[str, ServerProcess], case: str
) -> None:
    sent = CASES[case]
    direct = _exchange(servers["direct"].http_port, sent)
    asgi = _exchange(servers["asgi"].http_port, sent)
    assert _undated(direct) == _undated(asgi)
    answers = _answers(direct)
    statuses = [int(head.split(b" ", 2)[1]) for head, _ in answers]
    expected = {
        "one request, then close": [200],
        "keep-alive: three requests pipelined": [200, 200, 200],
        "pipelined with GET requests between": [200, 200, 200, 200],
        "versioned route": [404],  # the forest has no version "1"
        "chunked body": [200],
        "chunked body, then another request": [200, 200],
        "chunked body over the limit": [413],
        "declared length over the limit": [413],
        "HTTP/1.0": [200],
        "malformed JSON": [400],
        "not an infer request": [400],
        "unknown model": [404],
        "percent-encoded model name": [200],
        "wrong content type": [415],
        "POST on a GET route: 405 with Allow": [405],
        "no route": [404],
        "mlflow /invocations": [200],
        "mlflow /invocations with a bad body": [400],
        "kserve v1": [200],
        "seldon": [200],
        "a bad request line": [400],
    }[case]
    assert statuses == expected, direct
    last_head = answers[-1][0].lower()
    assert b"connection: close" in last_head  # every case ends the connection
    for head, body in answers:
        assert b"transfer-encoding" not in head.lower()
        assert head.lower().count(b"content-length") == 1
        if b"application/json" in head:
            answer = json.loads(body)
            status = int(head.split(b" ", 2)[1])
            assert ("error" in answer) == (status >= 400), answer
    if case == "POST on a GET route: 405 with Allow":
        assert b"allow: GET, HEAD" in answers[0][0]


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One answer (header block, body) from a keep-alive connection."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        data = sock.recv(65536)
        assert data, raw
        raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    found = re.search(rb"(?im)^content-length: *(\d+)", head)
    size = int(found.group(1)) if found else 0
    while len(rest) < size:
        data = sock.recv(65536)
        assert data, raw
        rest += data
    assert len(rest) == size  # nothing more was sent than asked for
    return head, rest


@pytest.mark.parametrize("kind", ["direct", "asgi"])
def test_keep_alive_one_request_at_a_time(servers: dict[str, ServerProcess], kind: str) -> None:
    with socket.create_connection(("127.0.0.1", servers[kind].http_port), timeout=30) as sock:
        for _ in range(5):
            sock.sendall(_post())
            head, body = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200") and b"connection:" not in head.lower()
            assert json.loads(body)["model_name"] == "forest"
        # A body sent in pieces, with the connection still usable after it.
        request = _post()
        for i in range(0, len(request), 50):
            sock.sendall(request[i : i + 50])
        head, _ = _read_answer(sock)
        assert head.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("kind", ["direct", "asgi"])
def test_expect_100_continue(servers: dict[str, ServerProcess], kind: str) -> None:
    port = servers[kind].http_port
    request = _post(extra="Expect: 100-continue\r\n")
    head, _, body = request.partition(b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + b"\r\n\r\n")
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            data = sock.recv(1)
            assert data, interim
            interim += data
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer_head, answer = _read_answer(sock)
        assert answer_head.startswith(b"HTTP/1.1 200"), answer
    # Too large by its declared length: 413 at once, no 100 Continue, connection closed.
    big = _post(body=b" " * (LIMIT + 1), extra="Expect: 100-continue\r\n")
    refused = _exchange(port, big.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 413") and b"100 Continue" not in refused


def test_an_answer_in_progress_at_sigterm_ends_its_connection(
    models_dir: Path, tmp_path: Path
) -> None:
    # The drain: a request being answered when the worker stops gets its answer, with
    # Connection: close, and the connection then closes (direct path: a POST).
    marks = tmp_path / "marks"
    marks.mkdir()
    # The model sleeps 10 s: the stop must reach the worker while it does (the drain
    # waits up to 30 s for it), so a slow test machine has a wide margin.
    body = b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [10]}]}'
    server = start_server(models_dir / "slow", env={"SERVING_TEST_MARKS": str(marks)})
    try:
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=60) as sock:
            sock.sendall(_post("/v2/models/slow/infer", body))
            wait_until(lambda: any(marks.iterdir()), "the request to reach the predictor")
            server.process.send_signal(signal.SIGTERM)
            head, answer = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200"), answer
            assert b"connection: close" in head.lower()
            assert json.loads(answer)["outputs"][0]["data"] == [20.0]
            assert sock.recv(65536) == b""  # closed after the answer
        assert server.process.wait(60) == 0
    finally:
        server.stop()


def test_a_queued_body_cut_off_by_a_timeout_gives_its_bytes_back(
    models_dir: Path, tmp_path: Path
) -> None:
    # The direct path takes a body's bytes from the worker's buffer budget as they
    # arrive, also for a request queued behind another on its connection. Here the
    # queued request's body stops half-way: its body timeout (1 s) closes the
    # connection while the request before it still sleeps in predict, so the queued
    # request never starts. Its bytes must come back all the same: afterwards a request
    # that needs all but 8 kB of the cap is answered.
    cap, limit = 2_008_000, 2_000_000
    args = ["--max-buffered-bytes", str(cap), "--max-body-size", str(limit)]
    env = {"SERVING_TEST_MARKS": str(tmp_path), "SHIPYARD_SERVER_BODY_TIMEOUT": "1"}
    slow = b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [10]}]}'
    with start_server(models_dir / "slow", models_dir / "forest", args=args, env=env) as server:
        head = _post(body=b" " * limit).partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        sent = _post("/v2/models/slow/infer", slow) + head + b" " * 250_000
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as sock:
            sock.sendall(sent)
            # Closed by the body timeout (408, or a reset: unread bytes were left).
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(65536):
                    pass
        big = _post(body=BODY + b" " * (limit - len(BODY)), close=True)

        def answered() -> bool:
            return _exchange(server.http_port, big).startswith(b"HTTP/1.1 200")

        wait_until(answered, "a request needing all but 8 kB of the buffer cap to be answered")


#: A body far larger than the socket buffers: the client is still sending it when the
#: server has refused it.
UPLOAD = b" " * (8 << 20)


@pytest.mark.parametrize(
    "request_head",
    [
        _post(body=UPLOAD).partition(b"\r\n\r\n")[0] + b"\r\n\r\n",
        _chunked(b"x").partition(b"\r\n\r\n")[0] + b"\r\n\r\n" + b"%x\r\n" % len(UPLOAD),
    ],
    ids=["declared length over the limit", "chunked body over the limit"],
)
def test_a_refusal_reaches_a_client_still_uploading(
    servers: dict[str, ServerProcess], request_head: bytes
) -> None:
    # The server answers 413 before the body has arrived. Closing the socket with the
    # body's bytes unread would make the kernel send a reset, and a client still
    # uploading would get "Connection reset by peer" instead of the answer; the server
    # half-closes instead and drops the rest of the body, as a client expects.
    with socket.create_connection(("127.0.0.1", servers["direct"].http_port), timeout=30) as sock:
        sock.sendall(request_head + UPLOAD)
        received = b""
        while data := sock.recv(65536):
            received += data
    head, body = _answers(received)[0]
    assert head.startswith(b"HTTP/1.1 413"), received[:300]
    assert b"connection: close" in head.lower()
    assert "error" in json.loads(body)

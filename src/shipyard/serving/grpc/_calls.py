"""Unary gRPC calls on top of ``Http2Connection``: check the request's headers, unwrap the
length-prefixed message, run the method as a task on this loop, and answer with the reply
and a ``grpc-status`` trailer (or a trailers-only error).

Methods are ``async (request bytes, timeout) -> reply bytes`` keyed by ``:path``, where
``timeout`` is the client's ``grpc-timeout`` in seconds (the data plane enforces it with
its own deadline); they raise ``RpcError`` to fail a call. A call the client resets, or
whose connection closes, has its task cancelled: a request still queued for its model is
dropped before ``predict`` (the batcher never tears a running batch apart).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping

from shipyard.serving.auth import BearerAuth
from shipyard.serving.grpc._http2 import (
    MAX_CONCURRENT_STREAMS,
    Http2Connection,
    Http2Limits,
    encode_header_block,
)
from shipyard.serving.grpc._status import RpcError, StatusCode, encode_message

__all__ = ["GrpcConnection", "Method"]

_log = logging.getLogger(__name__)

Method = Callable[[bytes, float | None], Awaitable[bytes]]

_CONTENT_TYPES = ("application/grpc", "application/grpc+proto")
_RESPONSE_HEADERS = encode_header_block([(":status", "200"), ("content-type", "application/grpc")])
_OK_TRAILERS = encode_header_block([("grpc-status", "0")])
_PREFIX = struct.Struct(">BL")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_ACCEPT_ENCODING = "identity,gzip,deflate"


#: grpcio drops a call whose response header list passes 16 KiB (some past 8 KiB) and
#: reports RESOURCE_EXHAUSTED in place of our status; a long message (an echoed model
#: name, a big repr in an exception) is cut to this many encoded characters.
_MAX_MESSAGE = 4096
_TRUNCATED = " [truncated]"


def _bounded_message(message: str) -> str:
    encoded = encode_message(message)
    if len(encoded) <= _MAX_MESSAGE:
        return encoded
    # Cut the text, not its encoding, so no %XX escape or UTF-8 sequence is split.
    pieces: list[str] = []
    used = len(_TRUNCATED)
    for char in message:
        piece = encode_message(char)
        used += len(piece)
        if used > _MAX_MESSAGE:
            break
        pieces.append(piece)
    return "".join(pieces) + _TRUNCATED


def _status_block(code: StatusCode, message: str, http_status: int = 200) -> bytes:
    headers = [
        (":status", str(http_status)),
        ("content-type", "application/grpc"),
        ("grpc-status", str(int(code))),
    ]
    if message:
        headers.append(("grpc-message", _bounded_message(message)))
    if code is StatusCode.UNIMPLEMENTED:
        headers.append(("grpc-accept-encoding", _ACCEPT_ENCODING))
    return encode_header_block(headers)


def _timeout_seconds(value: str) -> float | None:
    """``grpc-timeout``: up to 8 digits and a unit; anything else is ignored."""
    unit = _TIMEOUT_UNITS.get(value[-1:])
    digits = value[:-1]
    if unit is None or not digits.isdigit() or len(digits) > 8:
        return None
    return int(digits) * unit


def _decompress(data: bytes, encoding: str | None, limit: int) -> bytes:
    if encoding not in ("gzip", "deflate"):
        raise RpcError(
            StatusCode.UNIMPLEMENTED,
            f"Message compressed with {encoding or 'an undeclared encoding'!r}; "
            f"this server accepts {_ACCEPT_ENCODING}.",
        )
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as err:
        raise RpcError(
            StatusCode.INTERNAL, f"Could not decompress the {encoding} message: {err}"
        ) from err
    if len(out) > limit:
        raise RpcError(
            StatusCode.RESOURCE_EXHAUSTED,
            f"The decompressed message is larger than the server's limit of {limit} bytes.",
        )
    return out


def unwrap_message(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The one message of a unary request body (5-byte prefix + message)."""
    if len(body) < 5:
        raise RpcError(StatusCode.INTERNAL, "The request has no gRPC message (empty body).")
    compressed, length = _PREFIX.unpack_from(body)
    if length > limit:
        raise RpcError(
            StatusCode.RESOURCE_EXHAUSTED,
            f"Received message larger than max ({length} vs. {limit}); raise the server's "
            "--max-body-size or send fewer rows per call.",
        )
    if len(body) != 5 + length:
        raise RpcError(
            StatusCode.INTERNAL,
            "The request body is not exactly one length-prefixed message (a unary call takes one).",
        )
    message = body[5:]
    if compressed:
        return _decompress(message, encoding, limit)
    return message


class GrpcConnection(Http2Connection):
    """One client connection of the gRPC server."""

    def __init__(
        self,
        methods: Mapping[str, Method],
        max_message_bytes: int,
        connections: set[GrpcConnection],
        limits: Http2Limits | None = None,
        max_connections: int = 1000,
        auth: BearerAuth | None = None,
    ) -> None:
        super().__init__(max_body_bytes=max_message_bytes + 5, limits=limits)
        self._auth = auth
        self._max_connections = max_connections
        self._methods = methods
        self._max_message = max_message_bytes
        self._connections = connections
        # Calls in flight by stream: kept alive (the loop holds tasks weakly) and
        # cancelled when their stream is reset or the connection goes.
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self._connections) >= self._max_connections:
            # As many connections as this worker accepts: refuse before the preface, so
            # the client's channel retries (another worker, or later).
            transport.close()
            return
        self._connections.add(self)
        super().connection_made(transport)

    def _busy(self) -> bool:
        return bool(self._tasks)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        super().connection_lost(exc)

    # -- Http2Connection hooks -------------------------------------------------------

    def request_received(self, stream_id: int, headers: dict[str, str], body: bytes) -> None:
        if len(self._tasks) >= MAX_CONCURRENT_STREAMS:
            # A reset call's task runs on, so a reset frees no place: without this bound a
            # client resetting streams in a loop starts unbounded work ("rapid reset").
            self.refuse_stream(stream_id)
            return
        method = self._method_for(stream_id, headers)
        if method is None:
            return
        try:
            message = unwrap_message(body, headers.get("grpc-encoding"), self._max_message)
        except RpcError as err:
            self.send_headers_only(stream_id, _status_block(err.code, err.message))
            return
        timeout = headers.get("grpc-timeout")
        seconds = _timeout_seconds(timeout) if timeout is not None else None
        task = self._loop.create_task(self._call(stream_id, method, message, seconds))
        self._tasks[stream_id] = task

    def request_too_large(self, stream_id: int, headers: dict[str, str]) -> None:
        message = (
            f"Received message larger than max ({self._max_message} bytes); raise the "
            "server's --max-body-size or send fewer rows per call."
        )
        self.send_headers_only(stream_id, _status_block(StatusCode.RESOURCE_EXHAUSTED, message))

    def stream_cancelled(self, stream_id: int) -> None:
        task = self._tasks.pop(stream_id, None)
        if task is not None:
            task.cancel()

    # -- calls -----------------------------------------------------------------------

    def _method_for(self, stream_id: int, headers: dict[str, str]) -> Method | None:
        path = headers.get(":path", "")
        if headers.get(":method") != "POST":
            block = _status_block(StatusCode.UNIMPLEMENTED, "gRPC calls use POST.", 405)
        elif headers.get("content-type", "").split(";")[0].strip() not in _CONTENT_TYPES:
            block = _status_block(
                StatusCode.INVALID_ARGUMENT,
                f"content-type {headers.get('content-type')!r} is not application/grpc; "
                "this port speaks gRPC, use the HTTP port for REST.",
                415,
            )
        elif (
            self._auth is not None
            and path not in self._auth.open_grpc_methods
            and not self._auth.allows(headers.get("authorization"))
        ):
            block = _status_block(
                StatusCode.UNAUTHENTICATED,
                "This server requires a bearer token: send the metadata "
                "'authorization: Bearer <token>' (the token is in the server's --auth-token-file).",
            )
        elif (method := self._methods.get(path)) is not None:
            return method
        else:
            block = _status_block(StatusCode.UNIMPLEMENTED, f"Method not found: {path}")
        self.send_headers_only(stream_id, block)
        return None

    async def _call(
        self, stream_id: int, method: Method, message: bytes, timeout: float | None
    ) -> None:
        try:
            reply = await method(message, timeout)
        except asyncio.CancelledError:
            return  # the stream was reset or the connection went: nobody to answer
        except RpcError as err:
            self._end(stream_id, _status_block(err.code, err.message))
            return
        except Exception as err:  # a bug below: keep the traceback, tell the caller what
            _log.error("gRPC call failed unexpectedly", exc_info=err)
            text = f"Internal error: {type(err).__name__}: {err}"
            self._end(stream_id, _status_block(StatusCode.INTERNAL, text))
            return
        self._tasks.pop(stream_id, None)
        self.send_response(
            stream_id, _RESPONSE_HEADERS, _PREFIX.pack(0, len(reply)) + reply, _OK_TRAILERS
        )

    def _end(self, stream_id: int, status_block: bytes) -> None:
        self._tasks.pop(stream_id, None)
        self.send_headers_only(stream_id, status_block)

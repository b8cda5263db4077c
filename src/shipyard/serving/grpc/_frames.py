"""The HTTP/2 wire format (RFC 9113 sections 4, 6 and 7): frame types, flags, error codes
and settings; the frames we send, one function each; and the rules of the payloads we
read (padding, the priority field, fixed sizes). No state: ``_http2`` holds it.

A frame header is one ``struct`` unpack and a frame we send one pack: with response header
blocks encoded once (``_header_block``), that is where the per-call framing cost that
``_http2``'s docstring measures against the ``h2`` library comes from.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from shipyard.serving.grpc._header_block import hpack_int

__all__ = ["PREFACE", "ProtocolViolation", "frame", "headers_frames"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0, 1, 2, 3, 4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 5, 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20

# Error codes (section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 5, 6, 7, 8, 9
ENHANCE_YOUR_CALM = 11

# Settings identifiers.
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE = 1, 3, 4
SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 5, 6

MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535
DEFAULT_FRAME = 16_384
FRAME_HEADER = struct.Struct(">L B L")  # length (24 bits, packed with type), flags, stream


class ProtocolViolation(Exception):
    """A connection-level protocol error: answered with GOAWAY, then the socket closes."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return FRAME_HEADER.pack((len(payload) << 8) | kind, flags, stream_id) + payload


def settings_frame(settings: list[tuple[int, int]]) -> bytes:
    payload = b"".join(struct.pack(">HL", key, value) for key, value in settings)
    return frame(SETTINGS, 0, 0, payload)


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">L", increment))


def rst_stream_frame(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">L", code))


def goaway_frame(last_stream: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, struct.pack(">LL", last_stream, code) + debug)


def headers_frames(
    stream_id: int, block: bytes, end_stream: bool, max_frame: int, table_size: int | None
) -> bytes:
    """A header block as HEADERS (and CONTINUATIONs past ``max_frame``); ``table_size``
    prefixes the dynamic table size update the peer's last SETTINGS asked for."""
    if table_size is not None:
        block = hpack_int(table_size, 5, 0x20) + block
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_frame:
        return frame(HEADERS, flags | END_HEADERS, stream_id, block)
    parts = [block[i : i + max_frame] for i in range(0, len(block), max_frame)]
    frames = [frame(HEADERS, flags, stream_id, parts[0])]
    frames += [frame(CONTINUATION, 0, stream_id, p) for p in parts[1:-1]]
    frames.append(frame(CONTINUATION, END_HEADERS, stream_id, parts[-1]))
    return b"".join(frames)


def header_block_of(flags: int, stream_id: int, payload: bytes) -> bytes:
    """The header block fragment of a HEADERS frame: padding and priority taken off."""
    if stream_id == 0:
        raise ProtocolViolation(PROTOCOL_ERROR, "HEADERS on stream 0")
    start, end = 0, len(payload)
    if flags & PADDED:
        start, end = 1, end - payload[0]
    if flags & PRIORITY_FLAG:
        start += 5
    if start > end:
        raise ProtocolViolation(PROTOCOL_ERROR, "HEADERS padding longer than the frame")
    return payload[start:end]


def data_of(flags: int, payload: bytes) -> bytes:
    """The data of a DATA frame, its padding taken off."""
    if not flags & PADDED:
        return payload
    size = len(payload)
    if size == 0 or payload[0] >= size:
        raise ProtocolViolation(PROTOCOL_ERROR, "DATA padding longer than the frame")
    return payload[1 : size - payload[0]]


def settings_of(payload: bytes) -> Iterator[tuple[int, int]]:
    """The (identifier, value) pairs of a SETTINGS frame that is not an ACK."""
    if len(payload) % 6:
        raise ProtocolViolation(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
    return struct.iter_unpack(">HL", payload)


def window_increment_of(payload: bytes) -> int:
    if len(payload) != 4:
        raise ProtocolViolation(FRAME_SIZE_ERROR, "WINDOW_UPDATE must be 4 bytes")
    return int.from_bytes(payload, "big") & MAX_WINDOW

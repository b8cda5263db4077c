"""gRPC status codes, the error that carries one back to the caller, and how our own
errors map onto them."""

from __future__ import annotations

import enum

from shipyard.errors import ShipyardError

__all__ = ["RpcError", "StatusCode", "encode_message", "status_for"]


class StatusCode(enum.IntEnum):
    """The codes of https://grpc.github.io/grpc/core/md_doc_statuscodes.html we send."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


_BY_HTTP_STATUS = {
    400: StatusCode.INVALID_ARGUMENT,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.NOT_FOUND,
    413: StatusCode.RESOURCE_EXHAUSTED,
    415: StatusCode.INVALID_ARGUMENT,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.DEADLINE_EXCEEDED,
}


class RpcError(Exception):
    """Ends a call with ``code`` and ``message`` (the client's ``details()``)."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def status_for(err: ShipyardError) -> StatusCode:
    """The gRPC status for one of our errors, from the HTTP status on its class."""
    return _BY_HTTP_STATUS.get(err.status_code, StatusCode.INTERNAL)


_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("%")}


def encode_message(message: str) -> str:
    """``grpc-message`` is percent-encoded UTF-8 (the gRPC over HTTP/2 spec)."""
    raw = message.encode("utf-8", "replace")
    if all(byte in _PLAIN for byte in raw):
        return message
    return "".join(chr(b) if b in _PLAIN else f"%{b:02X}" for b in raw)

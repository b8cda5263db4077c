"""One worker's cap on request bytes held across all its connections.

``--max-body-size`` bounds one request, the connection cap bounds how many clients, but
together they allow connections x body size (1,000 x 32 MiB): a few hundred clients each
sending most of a large body could take a worker's memory. The budget bounds the sum: a
request's bytes are taken from it as they arrive (HTTP/1.1 bodies, HTTP/2 DATA) and given
back once its answer is computed (or the client left). Past the cap a request is refused
cleanly: HTTP 503 with ``Retry-After`` (the connection closes: its body was not read), or
RST_STREAM REFUSED_STREAM on gRPC (the client may retry it: it was not processed).

One worker runs one event loop, so the counter needs no lock.
"""

from __future__ import annotations

from shipyard.errors import OverloadedError

__all__ = ["BufferBudget", "BufferFullError"]


class BufferFullError(OverloadedError):
    """The worker holds as many request bytes as ``--max-buffered-bytes`` allows."""


class BufferBudget:
    """A counter of bytes held, under ``limit``."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        """Hold ``size`` more bytes, if the cap allows; False (nothing held) if not."""
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size

    def refusal(self) -> BufferFullError:
        return BufferFullError(
            f"This worker holds {self.used >> 20} MiB of request data, the most it buffers "
            f"(--max-buffered-bytes {self.limit}); retry shortly."
        )

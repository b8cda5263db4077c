"""One request body as it arrives, under the body limit and the worker's buffer budget.

The one rule for both ways a request reaches ``HttpApp`` (the ASGI app, and the direct
path of ``http._direct``): a ``Content-Length`` over ``--max-body-size`` is refused before
any of the body is read; every chunk is taken from the ``BufferBudget`` as it arrives and
counted against the limit (chunked bodies have no length to check up front); the bytes go
back to the budget once the answer is computed, or the client left.
"""

from __future__ import annotations

from shipyard.errors import BadRequestError, PayloadTooLargeError, ShipyardError
from shipyard.serving._budget import BufferBudget

__all__ = ["RequestBody", "check_declared_length"]


def check_declared_length(declared: bytes | None, limit: int) -> None:
    """413 for a ``Content-Length`` over ``limit``, before reading the body."""
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise BadRequestError("Content-Length is not a number.") from None
    if size > limit:
        raise PayloadTooLargeError(
            f"The request body has {size} bytes; this server accepts at most {limit} "
            "(set --max-body-size to change it)."
        )


class RequestBody:
    """The chunks of one body; ``error`` once a chunk was refused (nothing more is kept)."""

    __slots__ = ("_budget", "_chunks", "_closed", "_limit", "error", "held", "size")

    def __init__(self, budget: BufferBudget | None, limit: int) -> None:
        self._budget = budget
        self._limit = limit
        self._chunks: list[bytes] = []
        self._closed = False
        #: Why the body was refused (budget full, over the limit), raised by the reader.
        self.error: ShipyardError | None = None
        #: Bytes taken from the budget, given back by ``release``.
        self.held = 0
        self.size = 0

    def add(self, chunk: bytes) -> None:
        if self.error is not None or self._closed or not chunk:
            return
        budget = self._budget
        if budget is not None:
            if not budget.take(len(chunk)):
                self.error = budget.refusal()
                return
            self.held += len(chunk)
        self.size += len(chunk)
        if self.size > self._limit:
            self.error = PayloadTooLargeError(
                f"The request body is over {self._limit} bytes, the most this server accepts "
                "(set --max-body-size to change it)."
            )
            return
        self._chunks.append(chunk)

    def value(self) -> bytes:
        """The whole body; the refusal if a chunk was refused."""
        if self.error is not None:
            raise self.error
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def release(self) -> None:
        """Give the held bytes back; later chunks are ignored (the answer is computed)."""
        self._closed = True
        self._chunks = []
        if self.held and self._budget is not None:
            self._budget.give(self.held)
        self.held = 0

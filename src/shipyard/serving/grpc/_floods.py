"""Flood limits of one HTTP/2 connection (the limits Envoy, nginx and Go's x/net enforce,
in our terms).

Frames that make us work but carry no request -- SETTINGS, PING, RST_STREAM, PRIORITY --
spend tokens of a bucket that holds a burst and refills each second; an empty DATA or
CONTINUATION frame that ends nothing is allowed only a few times in a row; and while the
peer does not read our answers (the transport paused writing) we stop reading its frames,
and hang up if it still makes us queue more control frames. Each of these raises
``ProtocolViolation(ENHANCE_YOUR_CALM)``: the connection ends with GOAWAY.
"""

from __future__ import annotations

from collections.abc import Callable

from shipyard.serving.grpc._frames import ENHANCE_YOUR_CALM, ProtocolViolation

__all__ = ["SETTINGS_COST", "FloodGuard"]

_CONTROL_BURST = 10_000
_CONTROL_PER_SECOND = 2_000
SETTINGS_COST = 10  # a SETTINGS frame may touch every stream's window: it costs more
_MAX_EMPTY_FRAMES = 8
_MAX_QUEUED_CONTROL = 1_000


class FloodGuard:
    """The counters of one connection; ``clock`` is its loop's ``time``."""

    __slots__ = ("_clock", "_empty_frames", "_queued_control", "_tokens", "_tokens_at")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tokens = float(_CONTROL_BURST)
        self._tokens_at = clock()
        self._empty_frames = 0
        self._queued_control = 0

    def spend(self, tokens: int) -> None:
        """A control frame costing ``tokens`` arrived."""
        self._tokens -= tokens
        if self._tokens < 0:
            # Only a connection that used up its burst reads the clock.
            now = self._clock()
            refill = (now - self._tokens_at) * _CONTROL_PER_SECOND
            self._tokens = min(float(_CONTROL_BURST), self._tokens + refill)
            self._tokens_at = now
            if self._tokens < 0:
                raise ProtocolViolation(ENHANCE_YOUR_CALM, "too many control frames")

    def frame(self, empty: bool) -> None:
        """A DATA or CONTINUATION frame arrived; ``empty``: it carries nothing, ends nothing."""
        if not empty:
            self._empty_frames = 0
            return
        self._empty_frames += 1
        if self._empty_frames > _MAX_EMPTY_FRAMES:
            raise ProtocolViolation(ENHANCE_YOUR_CALM, "too many empty frames in a row")

    def queue_control(self) -> None:
        """A control reply is written while the peer does not read."""
        self._queued_control += 1
        if self._queued_control > _MAX_QUEUED_CONTROL:
            raise ProtocolViolation(ENHANCE_YOUR_CALM, "control frames are not being read")

    def peer_reads(self) -> None:
        """The transport resumed writing: what was queued has gone out."""
        self._queued_control = 0

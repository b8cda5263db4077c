"""``--access-log``: one line per HTTP request (method, path, status, latency).

An ASGI wrapper around ``HttpApp``, added only when asked for, so the default path pays
nothing. The query string is left out: it may carry tokens. Lines go to the worker's log
(the service log of a deployed server) through the ``shipyard.access`` logger, whose own
level is set so that ``log_level`` does not silence what the user turned on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["AccessLog", "enable", "log_request"]

_log = logging.getLogger("shipyard.access")

Scope = dict[str, Any]


def log_request(
    client: tuple[str, int] | None, method: str, path: str, status: int, started: float
) -> None:
    """The line for one request (status 0: no answer was sent, the client went away);
    both ways into the HTTP app write it (``AccessLog``, ``http._direct``)."""
    _log.info(
        '%s "%s %s" %s %.1f ms',
        (client or ("-", 0))[0],
        method,
        path,
        status or "-",
        (time.perf_counter() - started) * 1000.0,
    )


def enable() -> None:
    """Let ``shipyard.access`` lines through whatever ``log_level`` says."""
    _log.setLevel(logging.INFO)


class AccessLog:
    """Wrap ``app``; log each request once its answer is sent (or the client left)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        enable()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            log_request(scope.get("client"), scope["method"], scope["path"], status, started)

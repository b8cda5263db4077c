"""Bearer-token authentication of the model server, and the rule about exposed binds.

One token per server. HTTP requests carry it as ``Authorization: Bearer <token>``; gRPC
calls as the ``authorization`` metadata entry with the same value. A request without it
(or with another) gets 401 with ``WWW-Authenticate: Bearer`` (gRPC: ``UNAUTHENTICATED``),
except on the open paths (health and metrics by default: load balancers and Prometheus
call them without credentials). Tokens are compared in constant time.

With no token the HTTP app is served unwrapped and the gRPC connection skips the check
on one ``is None`` test: auth costs nothing when it is off.

Importing this module is cheap (no numpy, no web framework): the supervisor uses it.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError

__all__ = [
    "DEFAULT_OPEN_PATHS",
    "GRPC_HEALTH_METHODS",
    "UNAUTHORIZED_BODY",
    "UNAUTHORIZED_HEADERS",
    "AuthApp",
    "BearerAuth",
    "check_exposure",
    "is_loopback",
    "read_token_file",
    "write_token_file",
]

#: Paths answered without a token unless the config says otherwise: probes and scrapes.
DEFAULT_OPEN_PATHS = ("/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics")

#: The gRPC methods that mean the same as an open HTTP health path: open when it is.
GRPC_HEALTH_METHODS = {
    "/v2/health/live": "/inference.GRPCInferenceService/ServerLive",
    "/v2/health/ready": "/inference.GRPCInferenceService/ServerReady",
}

UNAUTHORIZED_BODY = (
    b'{"error":"This server requires a bearer token: send the header '
    b'\\"Authorization: Bearer <token>\\" (the token is in the server\'s --auth-token-file)."}'
)
#: The 401 answer's headers and body, the same from both ways into the HTTP app.
UNAUTHORIZED_HEADERS = [
    (b"content-type", b"application/json"),
    (b"www-authenticate", b'Bearer realm="shipyard"'),
    (b"content-length", b"%d" % len(UNAUTHORIZED_BODY)),
]


class BearerAuth:
    """One server's token and the paths that need none."""

    __slots__ = ("_token", "open_grpc_methods", "open_paths")

    def __init__(self, token: str, open_paths: Iterable[str] = DEFAULT_OPEN_PATHS) -> None:
        if not token:
            raise ConfigError("The auth token is empty; put a token in the token file.")
        self._token = token.encode()
        self.open_paths = frozenset(open_paths)
        self.open_grpc_methods = frozenset(
            method for path, method in GRPC_HEALTH_METHODS.items() if path in self.open_paths
        )

    def allows(self, authorization: bytes | str | None) -> bool:
        """Whether an ``Authorization`` value carries this server's token."""
        if authorization is None:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        # Constant time: how much of a guess matched must not show in the answer's timing.
        return hmac.compare_digest(token.strip(), self._token)

    def admits(self, path: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether an HTTP request for ``path`` may go on: an open path, or the token in
        its first ``Authorization`` header (names lower-cased, as httptools gives them).
        Both ways into the HTTP app ask this (``AuthApp``, ``http._direct``)."""
        if path in self.open_paths:
            return True
        return self.allows(next((v for k, v in headers if k == b"authorization"), None))


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class AuthApp:
    """Wraps the HTTP app: a request off the open paths needs the token (401 otherwise)."""

    __slots__ = ("_app", "_auth")

    def __init__(self, app: App, auth: BearerAuth) -> None:
        self._app = app
        self._auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._auth.admits(scope["path"], scope["headers"]):
            await send(
                {"type": "http.response.start", "status": 401, "headers": UNAUTHORIZED_HEADERS}
            )
            await send({"type": "http.response.body", "body": UNAUTHORIZED_BODY})
            return
        await self._app(scope, receive, send)


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in ``path`` (surrounding whitespace dropped); ``ConfigError`` naming the
    file if it cannot be read or is empty."""
    try:
        token = Path(path).read_text().strip()
    except OSError as err:
        raise ConfigError(
            f"Cannot read the auth token file {path}: {err.strerror or err}. "
            "Give a readable file holding the token (--auth-token-file)."
        ) from err
    if not token:
        raise ConfigError(f"The auth token file {path} is empty; write a token into it.")
    return token


def write_token_file(path: Path) -> str:
    """A new random token written to ``path`` (0600 from its first byte); the token."""
    import secrets

    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    path.chmod(0o600)
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(host: str, has_token: bool, insecure: bool) -> None:
    """Refuse to serve beyond this machine with nobody checking who calls."""
    if has_token or insecure or is_loopback(host):
        return
    raise ConfigError(
        f"Refusing to serve on {host} without authentication: anyone who can reach it could "
        "call your models. Require a token (--auth-token-file FILE, or SHIPYARD_SERVER_AUTH_TOKEN "
        "in the environment), or pass --insecure if the network in front of it controls access."
    )

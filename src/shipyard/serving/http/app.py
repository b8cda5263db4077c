"""A raw ASGI app: a tiny router and thin handlers over the ``DataPlane``.

No web framework: each request is one dict lookup (or a split of the path) and one
handler call, which keeps the per-request overhead close to a constant endpoint's.
Handlers only translate between bytes and the data plane; errors become
``{"error": "..."}`` with the ``ShipyardError``'s status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from shipyard.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    ShipyardError,
    UnsupportedMediaTypeError,
)
from shipyard.serving.codecs import kserve_v1, mlflow, seldon, v2
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.http.openapi import openapi_document
from shipyard.serving.metrics import Metrics

__all__ = ["HttpApp"]

log = logging.getLogger("shipyard.serving")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_JSON_TYPES = ("", "application/json")
_BINARY_HEADER = b"inference-header-content-length"


class _Response:
    __slots__ = ("body", "headers", "status")

    def __init__(
        self, body: bytes, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.headers = headers if headers is not None else _JSON


def _json(value: Any, status: int = 200) -> _Response:
    return _Response(orjson.dumps(value), status)


def _media_type(headers: dict[bytes, bytes]) -> str:
    return headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()


def _require_json(headers: dict[bytes, bytes], also: tuple[str, ...] = ()) -> None:
    media = _media_type(headers)
    if media not in _JSON_TYPES and media not in also and not media.endswith("+json"):
        allowed = ", ".join(("application/json", *also))
        # curl -d and urllib send form-urlencoded unless told otherwise: say how to fix it.
        raise UnsupportedMediaTypeError(
            f"Content type {media!r} is not supported here; send {allowed} "
            "(with curl: -H 'Content-Type: application/json')."
        )


class _Labels:
    """The metric labels of one request, filled in by the router before the handler runs,
    so a request whose handler raises is counted under its model and protocol too."""

    __slots__ = ("model", "protocol")

    def __init__(self) -> None:
        self.model = ""
        self.protocol = "other"


class HttpApp:
    """The model server's HTTP side for one worker."""

    def __init__(
        self, dataplane: DataPlane, metrics: Metrics | None = None, max_body_size: int = 100 << 20
    ) -> None:
        self.dataplane = dataplane
        self.metrics = metrics
        self.max_body_size = max_body_size
        self._get: dict[str, Callable[[Scope], Awaitable[_Response]]] = {
            "/v2/health/live": self._live,
            "/v2/health/ready": self._ready,
            "/v2": self._server_metadata,
            "/": self._server_metadata,
            "/ping": self._ping,
            "/health": self._ping,
            "/version": self._version,
            "/metrics": self._metrics,
            "/openapi.json": self._openapi,
        }
        self._post: dict[
            str, Callable[[Scope, dict[bytes, bytes], bytes], Awaitable[_Response]]
        ] = {
            "/invocations": self._mlflow,
            "/api/v0.1/predictions": self._seldon,
        }
        self._protocols = {"/invocations": "mlflow", "/api/v0.1/predictions": "seldon"}
        self._openapi_body = orjson.dumps(openapi_document())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        headers = dict(scope["headers"])
        labels = _Labels()
        try:
            # HEAD too: some load balancers probe health with it (uvicorn drops the body).
            get = self._get.get(path) if method in ("GET", "HEAD") else None
            post = self._post.get(path) if method == "POST" else None
            if get is not None:
                response = await get(scope)
            elif post is not None:
                labels.protocol = self._protocols[path]
                labels.model = self._label(self._requested_model(scope))
                body = await self._read_body(headers, receive)
                response = await post(scope, headers, body)
            else:
                response = await self._dynamic(method, path, scope, headers, receive, labels)
        except ShipyardError as err:
            if err.status_code >= 500:
                # A predictor's own failure: the operator needs it in the log too.
                # With the traceback: a predictor's author debugs it from the server log.
                log.warning(
                    "%s %s -> %d: %s", method, path, err.status_code, err.message, exc_info=err
                )
            response = _json({"error": err.message}, err.status_code)
        except Exception as err:  # a bug or a predictor's own exception: 500, never a crash
            log.exception("Unhandled error for %s %s", method, path)
            response = _json({"error": f"Internal error: {type(err).__name__}: {err}"}, 500)
        headers_out = response.headers
        if response.status == 413:
            # The rest of the body was never read: the connection cannot be reused.
            headers_out = [*headers_out, (b"connection", b"close")]
        await send(
            {"type": "http.response.start", "status": response.status, "headers": headers_out}
        )
        await send({"type": "http.response.body", "body": response.body})
        if self.metrics is not None and labels.protocol != "other":
            self.metrics.observe_request(
                labels.model, labels.protocol, response.status, time.perf_counter() - started
            )

    def _label(self, name: str) -> str:
        # Only served names become label values: otherwise every made-up name a client
        # sends would mint a new series in /metrics.
        return name if name in self.dataplane.registry else ""

    def _requested_model(self, scope: Scope) -> str:
        """The model an MLflow/Seldon request is for, without raising: ``?model=``, else
        the only served model, else ``""``."""
        query = scope.get("query_string", b"")
        if query:
            names = parse_qs(query.decode("latin-1")).get("model")
            if names:
                return str(names[0])
        registry = self.dataplane.registry
        return registry.names()[0] if len(registry) == 1 else ""

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        limit = self.max_body_size
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise BadRequestError("Content-Length is not a number.") from None
            if size > limit:
                raise PayloadTooLargeError(
                    f"The request body has {size} bytes; this server accepts at most {limit} "
                    "(set --max-body-size to change it)."
                )
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body
        chunks = [body]
        total = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequestError("The client went away before sending the whole body.")
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise PayloadTooLargeError(
                    f"The request body is over {limit} bytes, the most this server accepts "
                    "(set --max-body-size to change it)."
                )
            chunks.append(chunk)
        return b"".join(chunks)

    # -- routing of paths with a model name ------------------------------------------

    async def _dynamic(
        self,
        method: str,
        path: str,
        scope: Scope,
        headers: dict[bytes, bytes],
        receive: Receive,
        labels: _Labels,
    ) -> _Response:
        if path.startswith("/v2/models/"):
            parts = path[len("/v2/models/") :].split("/")
            name = unquote(parts[0])
            version: str | None = None
            rest = parts[1:]
            if len(rest) >= 2 and rest[0] == "versions":
                version = unquote(rest[1])
                rest = rest[2:]
            if name:
                if method == "POST" and rest == ["infer"]:
                    labels.model, labels.protocol = self._label(name), "v2"
                    body = await self._read_body(headers, receive)
                    return await self._v2_infer(name, version, headers, body)
                if method == "GET" and not rest:
                    return _json(self.dataplane.model_metadata(name, version))
                if method == "GET" and rest == ["ready"]:
                    ready = self.dataplane.model_ready(name, version)
                    return _json({"name": name, "ready": ready}, 200 if ready else 503)
        elif path.startswith("/v1/models/"):
            tail = path[len("/v1/models/") :]
            if method == "POST" and tail.endswith(":predict"):
                name = unquote(tail[: -len(":predict")])
                labels.model, labels.protocol = self._label(name), "v1"
                body = await self._read_body(headers, receive)
                return await self._v1_predict(name, headers, body)
            if method == "GET" and tail and "/" not in tail:
                name = unquote(tail)
                ready = self.dataplane.model_ready(name)
                return _json({"name": name, "ready": ready})
        allowed = [m for m, table in (("GET", self._get), ("POST", self._post)) if path in table]
        if allowed:
            raise _MethodNotAllowedError(
                f"{method} is not allowed on {path}; use {' or '.join(allowed)}."
            )
        raise NotFoundError(f"No route for {method} {path}; see /openapi.json for the routes.")

    # -- handlers --------------------------------------------------------------------

    async def _live(self, scope: Scope) -> _Response:
        return _json({"live": self.dataplane.live()})

    async def _ready(self, scope: Scope) -> _Response:
        ready = self.dataplane.ready()
        return _json({"ready": ready}, 200 if ready else 503)

    async def _ping(self, scope: Scope) -> _Response:
        ready = self.dataplane.ready()
        return _Response(b"\n" if ready else b"", 200 if ready else 503, [])

    async def _version(self, scope: Scope) -> _Response:
        # MLflow's scoring server answers its version as plain text.
        version = self.dataplane.server_metadata()["version"]
        return _Response(str(version).encode(), 200, [(b"content-type", b"text/plain")])

    async def _server_metadata(self, scope: Scope) -> _Response:
        return _json(self.dataplane.server_metadata())

    async def _metrics(self, scope: Scope) -> _Response:
        text = self.metrics.collect() if self.metrics is not None else ""
        return _Response(text.encode(), 200, [(b"content-type", b"text/plain; version=0.0.4")])

    async def _openapi(self, scope: Scope) -> _Response:
        return _Response(self._openapi_body)

    async def _v2_infer(
        self, name: str, version: str | None, headers: dict[bytes, bytes], body: bytes
    ) -> _Response:
        _require_json(headers, ("application/octet-stream",))
        self.dataplane.registry.get(name, version)  # unknown model: 404 before decoding
        raw_length = headers.get(_BINARY_HEADER)
        header_length: int | None = None
        if raw_length is not None:
            try:
                header_length = int(raw_length)
            except ValueError:
                raise BadRequestError("Inference-Header-Content-Length is not a number.") from None
        request = v2.decode_request(body, header_length)
        response = await self.dataplane.infer(name, version, request)
        out, json_length = v2.encode_response(response, v2.binary_outputs_wanted(request))
        if json_length is None:
            return _Response(out)
        return _Response(
            out,
            200,
            [
                (b"content-type", b"application/octet-stream"),
                (_BINARY_HEADER, str(json_length).encode()),
            ],
        )

    async def _v1_predict(self, name: str, headers: dict[bytes, bytes], body: bytes) -> _Response:
        _require_json(headers)
        entry = self.dataplane.registry.get(name)
        request = kserve_v1.decode_request(body, entry.signature)
        response = await self.dataplane.infer(name, None, request)
        return _Response(kserve_v1.encode_response(response))

    def _model_from_query(self, scope: Scope) -> str:
        query = scope.get("query_string", b"")
        if query:
            names = parse_qs(query.decode("latin-1")).get("model")
            if names:
                return str(names[0])
        return self.dataplane.registry.only().name

    async def _mlflow(self, scope: Scope, headers: dict[bytes, bytes], body: bytes) -> _Response:
        name = self._model_from_query(scope)
        entry = self.dataplane.registry.get(name)
        content_type = headers.get(b"content-type", b"application/json").decode("latin-1")
        request = mlflow.decode_request(body, content_type, entry.signature)
        response = await self.dataplane.infer(name, None, request)
        return _Response(mlflow.encode_response(response))

    async def _seldon(self, scope: Scope, headers: dict[bytes, bytes], body: bytes) -> _Response:
        _require_json(headers)
        name = self._model_from_query(scope)
        entry = self.dataplane.registry.get(name)
        request, form = seldon.decode_request(body, entry.signature)
        response = await self.dataplane.infer(name, None, request)
        return _Response(seldon.encode_response(response, form))


class _MethodNotAllowedError(ShipyardError):
    status_code = 405

"""A raw ASGI app: compiled routes (``_router``) and thin handlers over the ``DataPlane``.

No web framework: each request is one dict lookup (or a few compiled regular expressions
for paths with a model name) and one handler call, which keeps the per-request overhead
close to a constant endpoint's.
Handlers only translate between bytes and the data plane; errors become
``{"error": "..."}`` with the ``ShipyardError``'s status.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from shipyard.errors import (
    BadRequestError,
    MethodNotAllowedError,
    ShipyardError,
    UnsupportedMediaTypeError,
)
from shipyard.serving._budget import BufferBudget, BufferFullError
from shipyard.serving.codecs import kserve_v1, mlflow, seldon, v2
from shipyard.serving.codecs._numbers import MIN_BODY_BYTES, NumberParser
from shipyard.serving.config import DEFAULT_MAX_BODY_SIZE
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.http._body import RequestBody, check_declared_length
from shipyard.serving.http._router import Route, Router
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


class _Request:
    """What a handler gets, the same from either way in (the ASGI app, or the direct path
    of ``http._direct``): method, path, query string, headers, the path's parameters
    (``name``, ``version``) and the body as it arrives."""

    __slots__ = ("body", "headers", "method", "params", "path", "query", "read")

    def __init__(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: dict[bytes, bytes],
        body: RequestBody,
        read: Callable[[], Awaitable[bytes]],
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        #: Waits for the whole body (``body``'s refusal raised); the transport's own.
        self.read = read
        self.params: dict[str, str] = {}


class HttpApp:
    """The model server's HTTP side for one worker."""

    def __init__(
        self,
        dataplane: DataPlane,
        metrics: Metrics | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        budget: BufferBudget | None = None,
        numbers: NumberParser | None = None,
    ) -> None:
        self.dataplane = dataplane
        #: The compiled parser of numeric JSON tensors (None: orjson and numpy alone).
        self.numbers = numbers
        self.metrics = metrics
        self.max_body_size = max_body_size
        #: The worker's cap on request bytes held across connections (``_budget``).
        self.budget = budget
        v2 = "/v2/models/{name}"
        v2_version = "/v2/models/{name}/versions/{version}"
        self._router = Router(
            [
                Route("/v2/health/live", "GET", self._live),
                Route("/v2/health/ready", "GET", self._ready),
                Route("/v2", "GET", self._server_metadata),
                Route("/", "GET", self._server_metadata),
                Route("/ping", "GET", self._ping),
                Route("/health", "GET", self._ping),
                Route("/version", "GET", self._version),
                Route("/metrics", "GET", self._metrics),
                Route("/openapi.json", "GET", self._openapi),
                Route("/invocations", "POST", self._mlflow, "mlflow"),
                Route("/api/v0.1/predictions", "POST", self._seldon, "seldon"),
                # The inference routes first: they are the ones under load.
                Route(f"{v2}/infer", "POST", self._v2_infer, "v2"),
                Route(f"{v2_version}/infer", "POST", self._v2_infer, "v2"),
                Route("/v1/models/{name}:predict", "POST", self._v1_predict, "v1"),
                Route(v2, "GET", self._model_metadata),
                Route(v2_version, "GET", self._model_metadata),
                Route(f"{v2}/ready", "GET", self._model_ready),
                Route(f"{v2_version}/ready", "GET", self._model_ready),
                Route("/v1/models/{name}", "GET", self._v1_ready),
            ]
        )
        self._openapi_body = orjson.dumps(openapi_document())

    def request(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: dict[bytes, bytes],
        read: Callable[[RequestBody], Awaitable[bytes]],
    ) -> _Request:
        """A request for ``serve``; ``read`` waits for the whole body, fed to its
        ``RequestBody`` as it arrives."""
        body = RequestBody(self.budget, self.max_body_size)
        return _Request(method, path, query, headers, body, lambda: read(body))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return

        async def read(body: RequestBody) -> bytes:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise BadRequestError("The client went away before sending the whole body.")
                body.add(message.get("body", b""))
                if body.error is not None or not message.get("more_body", False):
                    return body.value()

        request = self.request(
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            dict(scope["headers"]),
            read,
        )
        response = await self.serve(request)
        if response is None:
            return
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        await send({"type": "http.response.body", "body": response.body})

    async def serve(self, request: _Request) -> _Response | None:
        """Route, run, map errors to their status, count: the answer with all its
        headers (None: the client went away, nobody is left to answer). Both ways in
        answer through here."""
        started = time.perf_counter()
        method, path = request.method, request.path
        labels = _Labels()
        unserved: str | None = None
        unread = False  # refused before its whole body was read
        try:
            route, request.params = self._router.match(method, path)
            if route.protocol != "other":
                # Set before the handler runs: a request that fails is counted under its
                # model and protocol too.
                labels.protocol = route.protocol
                name = request.params.get("name")
                labels.model = self._label(
                    name if name is not None else self._requested_model(request.query)
                )
            try:
                response: _Response = await route.endpoint(request)
            finally:
                request.body.release()
        except asyncio.CancelledError:
            # The client went away (see ``http.protocol``): nobody is left to answer.
            request.body.release()
            if self.metrics is not None and labels.protocol != "other":
                self.metrics.observe_unserved(labels.model, labels.protocol, "cancelled")
            return None
        except ShipyardError as err:
            unserved = getattr(err, "unserved", None)
            unread = isinstance(err, BufferFullError)
            if unserved is not None:
                # Shed or timed out: expected under overload, counted, not logged.
                response = _json({"error": err.message}, err.status_code)
                retry_after = getattr(err, "retry_after", None)
                if retry_after is not None:
                    response.headers = [*_JSON, (b"retry-after", str(retry_after).encode())]
            elif err.status_code >= 500 and not getattr(err, "logged", False):
                # A predictor's own failure: the operator needs it in the log too.
                # With the traceback: a predictor's author debugs it from the server log.
                log.warning(
                    "%s %s -> %d: %s", method, path, err.status_code, err.message, exc_info=err
                )
                response = _json({"error": err.message}, err.status_code)
            else:
                response = _json({"error": err.message}, err.status_code)
            if isinstance(err, MethodNotAllowedError):
                response.headers = [*response.headers, (b"allow", err.allow.encode())]
        except Exception:  # a bug: 500, never a crash, and no internals to the client
            request_id = uuid.uuid4().hex[:16]
            log.exception("request %s: unhandled error for %s %s", request_id, method, path)
            response = _json(
                {"error": f"Internal error (request id {request_id}; see the server log)."}, 500
            )
        # Content-Length, not chunked: every answer is one buffer, and an HTTP/1.0
        # client cannot read chunked encoding.
        headers_out = [*response.headers, (b"content-length", b"%d" % len(response.body))]
        if response.status == 413 or unread:
            # The rest of the body was never read: the connection cannot be reused.
            headers_out.append((b"connection", b"close"))
        response.headers = headers_out
        if self.metrics is not None and labels.protocol != "other":
            self.metrics.observe_request(
                labels.model, labels.protocol, response.status, time.perf_counter() - started
            )
            if unserved is not None:
                self.metrics.observe_unserved(labels.model, labels.protocol, unserved)
        return response

    def _label(self, name: str) -> str:
        # Only served names become label values: otherwise every made-up name a client
        # sends would mint a new series in /metrics.
        return name if name in self.dataplane.registry else ""

    def _requested_model(self, query: bytes) -> str:
        """The model an MLflow/Seldon request is for, without raising: ``?model=``, else
        the only served model, else ``""``."""
        if query:
            names = parse_qs(query.decode("latin-1")).get("model")
            if names:
                return str(names[0])
        registry = self.dataplane.registry
        return registry.names()[0] if len(registry) == 1 else ""

    async def _read_body(self, req: _Request) -> bytes:
        # Refused by its declared length before a byte of it is read (nor 100 Continue).
        check_declared_length(req.headers.get(b"content-length"), self.max_body_size)
        return await req.read()

    # -- handlers --------------------------------------------------------------------

    async def _live(self, req: _Request) -> _Response:
        return _json({"live": self.dataplane.live()})

    async def _ready(self, req: _Request) -> _Response:
        ready = self.dataplane.ready()
        reason = self.dataplane.not_ready_reason
        body: dict[str, Any] = (
            {"ready": ready} if reason is None else {"ready": ready, "error": reason}
        )
        return _json(body, 200 if ready else 503)

    async def _ping(self, req: _Request) -> _Response:
        ready = self.dataplane.ready()
        return _Response(b"\n" if ready else b"", 200 if ready else 503, [])

    async def _version(self, req: _Request) -> _Response:
        # MLflow's scoring server answers its version as plain text.
        version = self.dataplane.server_metadata()["version"]
        return _Response(str(version).encode(), 200, [(b"content-type", b"text/plain")])

    async def _server_metadata(self, req: _Request) -> _Response:
        return _json(self.dataplane.server_metadata())

    async def _metrics(self, req: _Request) -> _Response:
        text = self.metrics.collect() if self.metrics is not None else ""
        return _Response(text.encode(), 200, [(b"content-type", b"text/plain; version=0.0.4")])

    async def _openapi(self, req: _Request) -> _Response:
        return _Response(self._openapi_body)

    async def _model_metadata(self, req: _Request) -> _Response:
        return _json(self.dataplane.model_metadata(req.params["name"], req.params.get("version")))

    async def _model_ready(self, req: _Request) -> _Response:
        name = req.params["name"]
        ready = self.dataplane.model_ready(name, req.params.get("version"))
        return _json({"name": name, "ready": ready}, 200 if ready else 503)

    async def _v1_ready(self, req: _Request) -> _Response:
        name = req.params["name"]
        return _json({"name": name, "ready": self.dataplane.model_ready(name)})

    async def _v2_infer(self, req: _Request) -> _Response:
        name, version, headers = req.params["name"], req.params.get("version"), req.headers
        body = await self._read_body(req)
        _require_json(headers, ("application/octet-stream",))
        self.dataplane.registry.get(name, version)  # unknown model: 404 before decoding
        raw_length = headers.get(_BINARY_HEADER)
        header_length: int | None = None
        if raw_length is not None:
            try:
                header_length = int(raw_length)
            except ValueError:
                raise BadRequestError("Inference-Header-Content-Length is not a number.") from None
        numbers = self.numbers if len(body) >= MIN_BODY_BYTES else None
        request = v2.decode_request(body, header_length, numbers)
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

    async def _v1_predict(self, req: _Request) -> _Response:
        name, headers = req.params["name"], req.headers
        body = await self._read_body(req)
        _require_json(headers)
        entry = self.dataplane.registry.get(name)
        request = kserve_v1.decode_request(body, entry.signature)
        response = await self.dataplane.infer(name, None, request)
        return _Response(kserve_v1.encode_response(response))

    def _model_from_query(self, query: bytes) -> str:
        if query:
            names = parse_qs(query.decode("latin-1")).get("model")
            if names:
                return str(names[0])
        return self.dataplane.registry.only().name

    async def _mlflow(self, req: _Request) -> _Response:
        headers = req.headers
        body = await self._read_body(req)
        name = self._model_from_query(req.query)
        entry = self.dataplane.registry.get(name)
        content_type = headers.get(b"content-type", b"application/json").decode("latin-1")
        request = mlflow.decode_request(body, content_type, entry.signature)
        response = await self.dataplane.infer(name, None, request)
        return _Response(mlflow.encode_response(response))

    async def _seldon(self, req: _Request) -> _Response:
        headers = req.headers
        body = await self._read_body(req)
        _require_json(headers)
        name = self._model_from_query(req.query)
        entry = self.dataplane.registry.get(name)
        request, form = seldon.decode_request(body, entry.signature)
        response = await self.dataplane.infer(name, None, request)
        return _Response(seldon.encode_response(response, form))

"""The REST router, in-process against the ASGI app (as Starlette's router tests do):
a path that matches with the wrong method is 405 with ``Allow``; no match is 404."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from shipyard.models import load_model
from shipyard.serving.config import BatchingConfig
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.http.app import HttpApp


def _request(app: HttpApp, method: str, path: str, body: bytes = b"") -> httpx.Response:
    async def go() -> httpx.Response:
        # HttpApp's scope type is the narrower dict; the ASGI contract is the same.
        transport = httpx.ASGITransport(app=cast(Any, app))
        async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as c:
            headers = {"content-type": "application/json"} if body else {}
            return await c.request(method, path, content=body, headers=headers)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def app(models_dir: Path) -> HttpApp:
    plane = DataPlane()
    plane.add(plane.build_entry(load_model(models_dir / "forest"), "forest", BatchingConfig()))
    return HttpApp(plane)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v2/models/forest/infer", "POST"),
        ("GET", "/v2/models/forest/versions/1/infer", "POST"),
        ("PUT", "/v2/models/forest/infer", "POST"),
        ("POST", "/v2/models/forest", "GET, HEAD"),
        ("POST", "/v2/models/forest/ready", "GET, HEAD"),
        ("POST", "/v2/health/live", "GET, HEAD"),
        ("DELETE", "/metrics", "GET, HEAD"),
        ("GET", "/invocations", "POST"),
        ("GET", "/api/v0.1/predictions", "POST"),
        # A GET route matches: the readiness of a model named "forest:predict" (none).
        ("GET", "/v1/models/forest:predict", None),
        ("POST", "/v1/models/forest", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405_with_allow(
    app: HttpApp, method: str, path: str, allow: str | None
) -> None:
    response = _request(app, method, path)
    if allow is None:
        assert response.status_code == 404 and "forest:predict" in response.json()["error"]
        return
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert method in response.json()["error"] and allow.split(",")[0] in response.json()["error"]


@pytest.mark.parametrize(
    "path", ["/no/such/route", "/v2/models/forest/nope", "/v2/models/", "/v1/models/"]
)
def test_no_match_is_404(app: HttpApp, path: str) -> None:
    response = _request(app, "GET", path)
    assert response.status_code == 404
    assert "No route" in response.json()["error"]


def test_matching_routes_answer(app: HttpApp) -> None:
    assert _request(app, "GET", "/v2/health/ready").json() == {"ready": True}
    assert _request(app, "HEAD", "/v2/health/live").status_code == 200
    assert _request(app, "GET", "/v2/models/forest").json()["name"] == "forest"
    assert _request(app, "GET", "/v2/models/forest/ready").json() == {
        "name": "forest",
        "ready": True,
    }
    body = b'{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}'
    answer = _request(app, "POST", "/v2/models/forest/infer", body)
    assert answer.status_code == 200 and answer.json()["model_name"] == "forest"
    assert _request(app, "POST", "/v2/models/nope/infer", body).status_code == 404

"""The HTTP ceiling: a bare Starlette endpoint that reads the body and answers a constant.

Run with uvicorn + uvloop + httptools and one worker per core, like a fair peer.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_ANSWER = (
    b'{"model_name":"bare","outputs":[{"name":"predict","shape":[1],'
    b'"datatype":"INT64","data":[0]}]}'
)


async def infer(request: Request) -> Response:
    await request.body()
    return Response(_ANSWER, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b"", status_code=200)


app = Starlette(routes=[Route("/infer", infer, methods=["POST"]), Route("/ready", ready)])

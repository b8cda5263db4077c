"""One MLflow scoring-server worker on a listening socket it is handed (``engine: mlflow``).

Run by the socket keeper (``_keeper.py``) as ``python -m shipyard.deployers.mlflow._runner
--fd N [--fd M ...] --ready-fd R MODEL_DIR`` (one ``--fd`` per listening socket of the
port: several after taking over Shipyard's server, which has one per worker). It loads
MLflow's own scoring app (``mlflow.pyfunc.scoring_server``, what ``mlflow models serve``
runs under uvicorn), checks it in-process (``/ping``, then ``/invocations`` with the
model's serving example when it has one), and only then serves on the inherited sockets
and writes ``ready`` to fd R.
A model that fails to load or to answer never accepts a connection: it writes
``error: <reason>`` and exits, and the keeper keeps the previous workers serving.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

_SERVING_EXAMPLE = "serving_input_example.json"
#: Seconds an idle keep-alive connection stays open.
_IDLE_S = 5


def _report(fd: int, line: str) -> None:
    os.write(fd, (line.replace("\n", " ") + "\n").encode())


async def _check(app: Any, model_dir: Path) -> None:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://check") as client:
        ping = await client.get("/ping")
        if ping.status_code != 200:
            raise RuntimeError(f"GET /ping answered {ping.status_code}: {ping.text[:200]}")
        example = model_dir / _SERVING_EXAMPLE
        if example.is_file():
            answer = await client.post(
                "/invocations",
                content=example.read_bytes(),
                headers={"content-type": "application/json"},
            )
            if answer.status_code != 200:
                raise RuntimeError(
                    f"the model's serving example got {answer.status_code}: {answer.text[:300]}"
                )


def _drain_safe_http() -> dict[str, Any]:
    """Shipyard's HTTP protocol for the worker (``serving.http.protocol``): when a
    worker is retired (a reload), uvicorn's own closes each idle keep-alive connection
    at once, and a client's next request already on its way gets "Connection reset by
    peer"; Shipyard's answers it (``Connection: close``) or ends the connection with a
    FIN. Without httptools here, uvicorn's default."""
    try:
        from shipyard.serving.http.protocol import HttpLimits, protocol_class
    except ImportError:
        return {}
    return {"http": protocol_class(HttpLimits(idle_timeout=_IDLE_S))}


async def _serve(app: Any, socks: list[socket.socket], ready_fd: int, timeout: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_keep_alive=_IDLE_S,
        # In-flight requests of a retired worker finish; its accept queue is shared.
        timeout_graceful_shutdown=timeout,
        **_drain_safe_http(),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=socks))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.01)
    _report(ready_fd, "ready")
    os.close(ready_fd)
    await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shipyard-mlflow-runner")
    parser.add_argument("model_dir")
    parser.add_argument("--fd", type=int, action="append", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--timeout", type=int, default=60)
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir)
    try:
        # MLflow's scoring app reads the model path from its environment, as under its CLI.
        from mlflow.pyfunc import scoring_server

        os.environ[scoring_server._SERVER_MODEL_PATH] = str(model_dir)
        loaded = scoring_server.load_model_with_mlflow_config(  # type: ignore[no-untyped-call,unused-ignore]
            str(model_dir)
        )
        app = scoring_server.init(loaded)
        asyncio.run(_check(app, model_dir))
    except Exception as err:
        _report(args.ready_fd, f"error: {type(err).__name__}: {err}")
        print(f"Error: the MLflow model in {model_dir} cannot serve: {err}", file=sys.stderr)
        return 3
    # Family and type are read from each socket itself.
    socks = [socket.socket(fileno=fd) for fd in args.fd]
    asyncio.run(_serve(app, socks, args.ready_fd, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())

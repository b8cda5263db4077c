"""One worker process as the supervisor sees it.

A worker is a fresh interpreter (``python -m shipyard.serving.worker``), never a fork of
the supervisor, with its config in the environment and one end of a socketpair as its
channel. Over the channel the worker reports ``ready`` or ``failed`` once, then answers
the supervisor's commands (``prepare``/``commit``/``abort`` of a reload, ``not_ready``,
``close_drained``) by their ``id``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from shipyard.serving.control import WORKER_MODULE

__all__ = ["WorkerProcess"]


class WorkerProcess:
    """Worker ``index`` (its listening sockets are the ``index``-th of each port)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.ready = False
        self.failed: str | None = None
        self.models: list[dict[str, Any]] = []
        self.started_at = 0.0
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ready_event = asyncio.Event()
        self.reader_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def spawn(self, env_for: Callable[[int], dict[str, str]], fds: list[int]) -> None:
        """Start the process: ``env_for(channel fd)`` is its environment, ``fds`` the
        listening sockets it inherits. ``ready_event`` is set once it reported."""
        ours, theirs = socket.socketpair()
        env = env_for(theirs.fileno())
        self.ready = False
        self.failed = None
        self.ready_event = asyncio.Event()
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", WORKER_MODULE, env=env, pass_fds=[theirs.fileno(), *fds]
        )
        theirs.close()
        reader, self.writer = await asyncio.open_unix_connection(sock=ours)
        self.reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                self.ready_event.set()
                return
            try:
                message = json.loads(line)
            except ValueError:
                continue
            event = message.get("event")
            if event == "ready":
                self.ready = True
                self.models = message.get("models", [])
                self.ready_event.set()
            elif event == "failed":
                self.failed = str(message.get("error"))
                self.ready_event.set()
            elif "id" in message:
                future = self.replies.get(message["id"])
                if future is not None and not future.done():
                    future.set_result(message)

    async def request(self, command: dict[str, Any], cid: int, timeout: float) -> dict[str, Any]:
        """Send ``command`` as request ``cid``; its answer, or ``ok: false`` saying why none."""
        if self.writer is None or self.proc is None or self.proc.returncode is not None:
            return {"ok": False, "error": f"worker {self.pid} is not running"}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[cid] = future
        self.writer.write(json.dumps({**command, "id": cid}).encode() + b"\n")
        try:
            await self.writer.drain()
            return await asyncio.wait_for(future, timeout)
        except (TimeoutError, ConnectionError) as err:
            return {"ok": False, "error": f"worker {self.pid}: no answer ({type(err).__name__})"}
        finally:
            self.replies.pop(cid, None)

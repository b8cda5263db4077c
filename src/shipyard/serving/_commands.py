"""The supervisor's side of the control socket (the protocol is ``control``'s): one JSON
command per line, a reload whose caller hung up cancelled, and a reload's arguments
checked before anything is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from shipyard.serving.config import ModelSpec, check_model_name

__all__ = ["BadCommand", "ReloadRequest", "left", "reload_request", "serve_control"]

Run = Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]


class BadCommand(ValueError):
    """A command refused as sent; the message is the answer's ``error``."""


async def serve_control(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    run: Run,
    hand_over: Callable[[asyncio.StreamWriter], Awaitable[None]],
) -> None:
    """Answer one control connection's commands in turn with ``run`` (``handover`` with
    ``hand_over``, which writes its own answer) until the caller hangs up."""
    try:
        while line := await reader.readline():
            try:
                command = json.loads(line)
                if not isinstance(command, dict):
                    raise ValueError("a command is a JSON object")
                if command.get("op") == "handover":
                    await hand_over(writer)
                    continue
                answer = await _run_unless_abandoned(command, reader, run)
            except ValueError as err:
                answer = {"ok": False, "error": f"unreadable command: {err}"}
            if answer is None:
                return  # the caller hung up: nobody to answer
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _run_unless_abandoned(
    command: dict[str, Any], reader: asyncio.StreamReader, run: Run
) -> dict[str, Any] | None:
    """Run ``command``; if the caller hangs up first (a killed CLI), cancel it: a
    reload nobody waits for must not change what is served behind the registry's back.
    Returns None when the caller is gone."""
    if command.get("op") != "reload":
        return await run(command)
    task = asyncio.create_task(run(command))
    hangup = asyncio.create_task(reader.read(1))
    done, _ = await asyncio.wait({task, hangup}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        hangup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hangup
        return task.result()
    # A byte or EOF while a reload runs: the protocol sends one command at a time, so
    # either way the caller is not waiting for this answer the normal way.
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


@dataclass(frozen=True)
class ReloadRequest:
    uri: str
    name: str
    deadline: float  # epoch seconds
    trust: dict[str, Any] | None


def reload_request(command: dict[str, Any], served: set[str]) -> ReloadRequest:
    """A ``reload`` command's arguments, checked; ``served``: the names served now (the
    one a command without ``name`` means, when there is one). Raises ``BadCommand``."""
    uri = command.get("model_uri")
    if not isinstance(uri, str) or not uri.strip():
        raise BadCommand('reload needs "model_uri"')
    name = command.get("name")
    if name is None:
        if len(served) != 1:
            raise BadCommand(f'reload needs "name"; served: {sorted(served)}')
        name = next(iter(served))
    try:
        # Refused here, before anything is loaded: a name no worker could be started
        # with would otherwise poison every replacement worker.
        check_model_name(str(name))
        deadline = _deadline_of(command)
        trust = _trust_of(command)
    except ValueError as err:
        raise BadCommand(f"reload refused: {err}") from err
    return ReloadRequest(uri, str(name), deadline, trust)


def _trust_of(command: dict[str, Any]) -> dict[str, Any] | None:
    """The reload's trust options (``trusted``, ``sha256``, ``trusted_types``), checked."""
    trust = command.get("trust")
    if trust is None:
        return None
    if not isinstance(trust, dict):
        raise ValueError('"trust" must be an object')
    try:
        return ModelSpec(uri="-", **trust).load_options()
    except (TypeError, ValueError) as err:
        raise ValueError(f'bad "trust": {err}') from err


def _deadline_of(command: dict[str, Any]) -> float:
    """The reload's deadline in epoch seconds: ``deadline`` as sent, else now + ``timeout``
    (default 300 s). Wall-clock time, because it travels between processes."""
    if command.get("deadline") is not None:
        value = command["deadline"]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f'"deadline" must be epoch seconds, got {value!r}')
        return float(value)
    timeout = command.get("timeout", 300)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f'"timeout" must be a positive number of seconds, got {timeout!r}')
    return time.time() + float(timeout)


def left(deadline: float) -> float:
    """Seconds until ``deadline`` (epoch seconds), at least 0."""
    return max(0.0, deadline - time.time())

"""PlaneBridge: work runs on the other loop's thread; results, errors and cancellations
come back; nothing is left for asyncio to complain about."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard.serving.grpc._bridge import PlaneBridge


@pytest.fixture
def plane() -> Iterator[tuple[asyncio.AbstractEventLoop, list[dict[str, Any]]]]:
    loop = asyncio.new_event_loop()
    complaints: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: complaints.append(context))
    thread = threading.Thread(target=loop.run_forever, name="plane")
    thread.start()
    try:
        yield loop, complaints
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_results_errors_and_bursts(
    plane: tuple[asyncio.AbstractEventLoop, list[dict[str, Any]]],
) -> None:
    loop, complaints = plane

    async def main() -> None:
        bridge = PlaneBridge(asyncio.get_running_loop(), loop)

        async def where() -> str:
            return threading.current_thread().name

        assert await bridge.run(where) == "plane"

        async def boom() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await bridge.run(boom)

        def square(i: int) -> Any:
            async def work() -> int:
                await asyncio.sleep(0)
                return i * i

            return work

        assert await asyncio.gather(*(bridge.run(square(i)) for i in range(64))) == [
            i * i for i in range(64)
        ]

    asyncio.run(main())
    assert complaints == []


def test_a_cancelled_call_leaves_no_unretrieved_error(
    plane: tuple[asyncio.AbstractEventLoop, list[dict[str, Any]]],
) -> None:
    loop, complaints = plane
    started, finished = threading.Event(), threading.Event()

    async def main() -> None:
        bridge = PlaneBridge(asyncio.get_running_loop(), loop)

        async def fails_late() -> None:
            started.set()
            try:
                await asyncio.sleep(0.2)
                raise ValueError("too late, nobody listens")
            finally:
                finished.set()

        call = asyncio.ensure_future(bridge.run(fails_late))
        while not started.is_set():
            await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        while not finished.is_set():
            await asyncio.sleep(0.01)

        async def flush() -> None:
            gc.collect()  # a never-retrieved error is reported when its task is collected

        await bridge.run(flush)

    asyncio.run(main())
    assert complaints == []


def test_same_loop_runs_directly() -> None:
    async def main() -> None:
        here = asyncio.get_running_loop()
        bridge = PlaneBridge(here, here)

        async def ident() -> int:
            return threading.get_ident()

        assert await bridge.run(ident) == threading.get_ident()

    asyncio.run(main())

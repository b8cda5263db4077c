"""Request deadlines with one loop timer per model (``serving._deadlines``): each request
is cancelled at its own deadline and only then, a client's shorter deadline keeps its
own, and a cancellation from elsewhere stays a cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shipyard.serving._deadlines import Deadlines

#: How long a request that must not expire may wait for its answer: far beyond its
#: deadline's length would be a hang; the tests' requests are answered at once.
NEVER = 30.0


async def _request(
    deadlines: Deadlines, seconds: float, answered: asyncio.Event, swallow: bool = False
) -> str:
    """A request's admission as the data plane does it: ``expired`` if its deadline
    cancelled it, ``answered`` if ``answered`` was set first."""
    deadline = deadlines.start(seconds)
    try:
        try:
            await answered.wait()
        except asyncio.CancelledError:
            if swallow:  # a predictor that catches everything: the answer comes anyway
                return "swallowed"
            raise
        return "answered"
    except asyncio.CancelledError:
        if not deadline.caused():
            raise
        return "expired"
    finally:
        deadlines.end(deadline)


def _run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), NEVER))


def test_only_requests_still_waiting_at_their_deadline_expire() -> None:
    async def scenario() -> list[str]:
        deadlines = Deadlines(0.05)
        fast, slow = asyncio.Event(), asyncio.Event()
        quick = [asyncio.create_task(_request(deadlines, 0.05, fast)) for _ in range(3)]
        stuck = [asyncio.create_task(_request(deadlines, 0.05, slow)) for _ in range(3)]
        await asyncio.sleep(0)
        fast.set()
        return await asyncio.gather(*quick, *stuck)

    assert _run(scenario) == ["answered"] * 3 + ["expired"] * 3


def test_deadlines_started_later_expire_after_the_first_timer() -> None:
    # The one timer moves on to the next deadline still running.
    async def scenario() -> list[str]:
        deadlines = Deadlines(0.05)
        never = asyncio.Event()
        first = asyncio.create_task(_request(deadlines, 0.05, never))
        await asyncio.sleep(0.02)
        later = asyncio.create_task(_request(deadlines, 0.05, never))
        return [await first, await later]

    assert _run(scenario) == ["expired", "expired"]


def test_a_shorter_client_deadline_expires_on_its_own() -> None:
    async def scenario() -> tuple[str, str]:
        deadlines = Deadlines(NEVER)
        never, answer = asyncio.Event(), asyncio.Event()
        short = asyncio.create_task(_request(deadlines, 0.02, never))
        normal = asyncio.create_task(_request(deadlines, NEVER, answer))
        result = await short
        assert not normal.done()
        answer.set()
        return result, await normal

    assert _run(scenario) == ("expired", "answered")


def test_a_deadline_already_past_expires_at_the_first_wait() -> None:
    async def scenario() -> str:
        return await _request(Deadlines(NEVER), 0.0, asyncio.Event())

    assert _run(scenario) == "expired"


def test_a_cancellation_from_elsewhere_is_not_a_deadline() -> None:
    # The client went away: the request's task is cancelled, and stays cancelled.
    async def scenario() -> None:
        deadlines = Deadlines(NEVER)
        task = asyncio.create_task(_request(deadlines, NEVER, asyncio.Event()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    _run(scenario)


def test_a_swallowed_expiry_is_taken_back() -> None:
    # As asyncio.timeout does: the task's cancel count is restored, so a later
    # asyncio.timeout in the same task still tells its own expiry from a cancellation.
    async def scenario() -> tuple[str, int]:
        deadlines = Deadlines(0.02)
        result = await _request(deadlines, 0.02, asyncio.Event(), swallow=True)
        task = asyncio.current_task()
        assert task is not None
        return result, task.cancelling()

    assert _run(scenario) == ("swallowed", 0)


def test_answered_deadlines_behind_a_long_request_are_dropped() -> None:
    # One request waits long at the head; thousands answered behind it must not pile up.
    async def scenario() -> int:
        deadlines = Deadlines(NEVER)
        hold = asyncio.Event()
        head = asyncio.create_task(_request(deadlines, NEVER, hold))
        await asyncio.sleep(0)
        answered = asyncio.Event()
        answered.set()
        for _ in range(5000):
            assert await _request(deadlines, NEVER, answered) == "answered"
        hold.set()
        assert await head == "answered"
        return len(deadlines._queue)

    assert _run(scenario) < 2100

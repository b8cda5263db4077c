"""Adaptive batching: concurrent requests to one model share one ``predict`` call.

How a batch forms, without adding latency to a lone request:

* A request whose model input is an array (or a dict of arrays, or a DataFrame) is queued.
* If no batch is running, a drain task starts; it yields to the event loop twice, so that
  requests read from the network in the same loop turn can join, then takes every queued
  request that fits (same trailing shapes and dtypes) up to ``max_batch_size`` rows.
* While a batch is in ``predict``, new requests queue up and form the next batch. This is
  where batches come from under load; at concurrency 1 the queue is empty and the single
  request runs at once.
* ``max_batch_delay`` is spent only while more requests are expected: some are still in an
  async ``preprocess``, or the previous batch merged several requests and fewer than that
  are queued now (their clients are sending their next requests). A lone client's previous
  batch held one request, so its requests are never delayed.
* A request whose caller stopped waiting (its client went away or its deadline passed:
  the data plane cancels the wait) is dropped when the next batch is taken, so it never
  reaches ``predict``; one already inside a running batch is not torn out of it.
* A request bigger than ``max_batch_size`` runs alone. If a merged batch fails, each of its
  requests is retried alone, so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import PredictorError
from shipyard.serving.config import BatchingConfig

__all__ = ["AdaptiveBatcher", "batch_key", "concat", "split"]


def _is_frame(obj: object) -> bool:
    cls = type(obj)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")


def batch_key(inputs: Any) -> tuple[int, Hashable] | None:
    """Rows and a compatibility key for ``inputs``, or ``None`` if they cannot be batched."""
    if isinstance(inputs, np.ndarray):
        if inputs.ndim == 0:
            return None
        return inputs.shape[0], ("a", inputs.shape[1:], inputs.dtype.str)
    if isinstance(inputs, Mapping) and inputs:
        rows = -1
        parts: list[Hashable] = []
        for name, value in inputs.items():
            if not isinstance(value, np.ndarray) or value.ndim == 0:
                return None
            if rows not in (-1, value.shape[0]):
                return None
            rows = value.shape[0]
            parts.append((name, value.shape[1:], value.dtype.str))
        return rows, ("d", tuple(parts))
    if _is_frame(inputs):
        return len(inputs), ("f", tuple(map(str, inputs.columns)), tuple(map(str, inputs.dtypes)))
    return None


def concat(parts: list[Any]) -> Any:
    """Concatenate compatible inputs along the first axis."""
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts, axis=0)
    if isinstance(first, Mapping):
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in first}
    import pandas as pd

    return pd.concat(parts, ignore_index=True)


def _rows_of(value: Any) -> int | None:
    if isinstance(value, np.ndarray):
        return value.shape[0] if value.ndim else None
    if isinstance(value, list | tuple) or _is_frame(value):
        return len(value)
    return None


def split(outputs: Any, counts: list[int], predictor: str) -> list[Any]:
    """Split a batch's outputs back into one piece per request, by row counts."""
    total = sum(counts)
    if isinstance(outputs, Mapping):
        pieces = {k: split(v, counts, predictor) for k, v in outputs.items()}
        return [{k: pieces[k][i] for k in pieces} for i in range(len(counts))]
    rows = _rows_of(outputs)
    if rows != total:
        raise PredictorError(
            f"{predictor}.predict() returned {rows if rows is not None else 'no'} rows for a "
            f"batch of {total} input rows, so the batch cannot be split back into requests. "
            "Return one output row per input row, or set supports_batching = False."
        )
    out: list[Any] = []
    start = 0
    for count in counts:
        end = start + count
        out.append(outputs.iloc[start:end] if _is_frame(outputs) else outputs[start:end])
        start = end
    return out


@dataclass(slots=True)
class _Item:
    inputs: Any
    rows: int
    key: Hashable
    future: asyncio.Future[Any]


class AdaptiveBatcher:
    """Merges concurrent ``submit`` calls for one model into batched ``predict`` calls."""

    def __init__(
        self,
        predict: Callable[[Any], Awaitable[Any]],
        config: BatchingConfig,
        *,
        predictor_name: str,
        on_batch: Callable[[int, int], None] | None = None,
        in_thread: bool = False,
    ) -> None:
        self._predict = predict
        #: ``predict`` runs in a thread, which a cancelled caller cannot stop: a lone
        #: request's predict then runs in a task of its own that holds the model's turn
        #: until the thread returns (one predict at a time, even when nobody waits).
        self._in_thread = in_thread
        self.config = config
        self._name = predictor_name
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._draining = False
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        #: Requests of this model that are past decoding but not queued yet (async
        #: preprocess); the only reason to wait ``max_batch_delay``.
        self.arriving = 0
        #: Requests merged into the previous predict call: under steady concurrent load,
        #: about that many requests come back, and waiting for them makes full batches.
        self._last_requests = 1
        #: Set while a request predicts on its own, outside a batch (see ``submit``).
        self._alone: asyncio.Future[None] | None = None
        self._turn_taken = False

    async def submit(self, inputs: Any) -> Any:
        """Predict ``inputs`` (one request's), possibly as part of a larger batch."""
        found = batch_key(inputs)
        if found is None or found[0] > self.config.max_batch_size or found[0] == 0:
            return await self._run_alone(inputs, found[0] if found else 1)
        if self._idle_and_alone():
            # One request at a time lately, none waiting: the three loop turns spent
            # gathering would only add latency. Requests arriving meanwhile queue up,
            # and their batch waits for this call: one predict at a time, as always.
            # Requests read in the same loop turn run right after this one (an inline
            # predict returns before they start): they find the turn taken and queue.
            loop = asyncio.get_running_loop()
            self._turn_taken = True
            loop.call_soon(self._end_turn)
            alone = self._alone = loop.create_future()
            if self._in_thread:
                task = loop.create_task(self._run_alone(inputs, found[0]))
                task.add_done_callback(lambda _: self._release(alone))
                return await asyncio.shield(task)
            try:
                return await self._run_alone(inputs, found[0])
            finally:
                self._release(alone)
        loop = asyncio.get_running_loop()
        item = _Item(inputs, found[0], found[1], loop.create_future())
        self._queue.append(item)
        self._queued_rows += item.rows
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await item.future

    def _release(self, alone: asyncio.Future[None]) -> None:
        alone.set_result(None)
        if self._alone is alone:
            self._alone = None

    def _end_turn(self) -> None:
        self._turn_taken = False

    def _idle_and_alone(self) -> bool:
        return (
            self._last_requests == 1
            and not self._turn_taken
            and not self._draining
            and self._alone is None
            and not self._queue
            and self.arriving == 0
        )

    async def _run_alone(self, inputs: Any, rows: int) -> Any:
        result = await self._predict(inputs)
        if self._on_batch is not None:
            self._on_batch(rows, 1)
        return result

    async def _drain(self) -> None:
        try:
            while self._queue:
                if self._alone is not None:
                    await asyncio.shield(self._alone)
                await self._gather()
                batch = self._take()
                try:
                    await self._run(batch)
                except Exception as err:
                    # Never leave a request waiting on a future nobody will resolve.
                    _fail(batch, err)
        finally:
            self._draining = False
            if self._queue:
                # Cancelled (the worker is stopping): the queued requests get an answer.
                _fail(list(self._queue), PredictorError("The server stopped before predicting."))
                self._queue.clear()
                self._queued_rows = 0

    async def _gather(self) -> None:
        # Two yields: one for the loop to read sockets, one for the new request tasks
        # to run up to submit(). Then keep yielding while the queue still grows.
        limit = self.config.max_batch_size
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen = len(self._queue)
        while self._queued_rows < limit:
            await asyncio.sleep(0)
            if len(self._queue) == seen:
                break
            seen = len(self._queue)
        delay = self.config.max_batch_delay
        if delay <= 0 or self._queued_rows >= limit or not self._expecting():
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while self._queued_rows < limit and self._expecting():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup = loop.create_future()
            timer = loop.call_later(remaining, _resolve, self._wakeup)
            try:
                await self._wakeup
            finally:
                timer.cancel()
                self._wakeup = None

    def _expecting(self) -> bool:
        return self.arriving > 0 or len(self._queue) < self._last_requests

    def _take(self) -> list[_Item]:
        # Requests whose caller stopped waiting (client gone, deadline passed: their
        # future is cancelled) leave the queue here, never reaching predict.
        self._drop_abandoned()
        if not self._queue:
            return []
        first = self._queue.popleft()
        batch = [first]
        rows = first.rows
        skipped: list[_Item] = []
        limit = self.config.max_batch_size
        while self._queue and rows < limit:
            item = self._queue.popleft()
            if item.future.done():
                self._queued_rows -= item.rows
                continue
            if item.key == first.key and rows + item.rows <= limit:
                batch.append(item)
                rows += item.rows
            else:
                skipped.append(item)
        # Requests that did not fit keep their place at the head of the queue.
        self._queue.extendleft(reversed(skipped))
        self._queued_rows -= rows
        self._last_requests = len(batch)
        return batch

    def _drop_abandoned(self) -> None:
        queue = self._queue
        while queue and queue[0].future.done():
            self._queued_rows -= queue.popleft().rows

    async def _run(self, batch: list[_Item]) -> None:
        if not batch:
            return
        if len(batch) == 1:
            await self._settle(batch[0])
            return
        counts = [item.rows for item in batch]
        try:
            merged = concat([item.inputs for item in batch])
            outputs = await self._predict(merged)
            pieces = split(outputs, counts, self._name)
        except Exception:
            # One request may have poisoned the batch: retry each alone so only it fails
            # (those whose caller left meanwhile are not retried).
            for item in batch:
                if not item.future.done():
                    await self._settle(item)
            return
        if self._on_batch is not None:
            self._on_batch(sum(counts), len(batch))
        for item, piece in zip(batch, pieces, strict=True):
            if not item.future.done():
                item.future.set_result(piece)

    async def _settle(self, item: _Item) -> None:
        if item.future.done():
            return
        try:
            result = await self._predict(item.inputs)
        except Exception as err:
            if not item.future.done():
                item.future.set_exception(err)
            return
        if self._on_batch is not None:
            self._on_batch(item.rows, 1)
        if not item.future.done():
            item.future.set_result(result)


def _fail(items: list[_Item], err: Exception) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(err)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

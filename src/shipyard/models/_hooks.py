"""A predictor's hooks: the rules every caller shares, and the synchronous driver.

``HookSet`` decides once, when a predictor is wrapped, which hooks run (a base-class
identity hook or a missing one is skipped), which are coroutines, and how a hook's
exception becomes a ``PredictorError`` naming the class and hook. Drivers only call:
``SyncHooks`` from plain code (``LoadedModel.predict``, ``save_model``'s example check,
batch workers), ``shipyard.serving._hooks.Hooks`` on the model server's event loop — the
shape of httpx's ``BaseClient`` with ``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any

from shipyard.errors import PredictorError, ShipyardError
from shipyard.models.predictor import Predictor

__all__ = ["Hook", "HookSet", "SyncHooks", "call_hook"]

Hook = Callable[[Any], Any]


def _hook(predictor: Any, name: str) -> Hook | None:
    """The bound hook, or None when it is missing or the base class's identity."""
    method = getattr(type(predictor), name, None)
    if method is None or method is getattr(Predictor, name):
        return None
    bound: Hook = getattr(predictor, name)
    return bound


class HookSet:
    """Which hooks a predictor has and which are coroutines, decided once."""

    def __init__(self, predictor: Any, *, wrap_errors: bool = True) -> None:
        self.predictor = predictor
        self.name = type(predictor).__name__
        predict = getattr(predictor, "predict", None)
        if not callable(predict):
            raise PredictorError(f"{self.name} has no predict() method.")
        self.predict_fn: Hook = predict
        self.predict_is_async = inspect.iscoroutinefunction(predict)
        self.pre_fn = _hook(predictor, "preprocess")
        self.pre_is_async = self.pre_fn is not None and inspect.iscoroutinefunction(self.pre_fn)
        self.post_fn = _hook(predictor, "postprocess")
        self.post_is_async = self.post_fn is not None and inspect.iscoroutinefunction(self.post_fn)
        #: False: a hook's own exception propagates as it is (``LoadedModel.predict``).
        self.wrap_errors = wrap_errors
        self.supports_batching = bool(getattr(predictor, "supports_batching", False))

    def failed(self, hook: str, err: Exception) -> Exception:
        """What to raise when ``hook`` raised ``err``: ours pass, the predictor's wrap."""
        if isinstance(err, ShipyardError) or not self.wrap_errors:
            return err
        return PredictorError(f"{self.name}.{hook}() raised {type(err).__name__}: {err}")

    def steps(self) -> list[tuple[str, Hook, bool]]:
        """The hooks that run, in order: (name, callable, is a coroutine function)."""
        chain: list[tuple[str, Hook | None, bool]] = [
            ("preprocess", self.pre_fn, self.pre_is_async),
            ("predict", self.predict_fn, self.predict_is_async),
            ("postprocess", self.post_fn, self.post_is_async),
        ]
        return [(name, fn, is_async) for name, fn, is_async in chain if fn is not None]


class SyncHooks(HookSet):
    """``preprocess -> predict -> postprocess`` from synchronous code.

    ``async def`` hooks run on one event loop kept for this object (so a predictor's
    loop-bound clients survive between calls); ``close()`` closes it.
    """

    def __init__(self, predictor: Any, *, wrap_errors: bool = True) -> None:
        super().__init__(predictor, wrap_errors=wrap_errors)
        self._steps = self.steps()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, data: Any) -> Any:
        for hook, fn, is_async in self._steps:
            try:
                data = self._await(fn(data)) if is_async else fn(data)
            except Exception as err:
                raise self.failed(hook, err) from err
        return data

    def _await(self, coro: Any) -> Any:
        if _loop_running():
            return _run_in_thread(coro)
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_in_thread(coro: Any) -> Any:
    # A loop runs in this thread (a notebook, an async server's start-up): blocking it
    # with run_until_complete would fail, so the coroutine gets a loop of its own.
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as err:
            box["error"] = err

    thread = threading.Thread(target=runner, name="shipyard-async-hook")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def call_hook(fn: Any, *args: Any) -> Any:
    """Call one hook (``load``, say), sync or ``async def``, and return its result."""
    result = fn(*args)
    if not inspect.isawaitable(result):
        return result
    if _loop_running():
        return _run_in_thread(result)
    return asyncio.run(result)  # type: ignore[arg-type]

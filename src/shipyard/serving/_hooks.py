"""The model server's driver of a predictor's hooks, on its event loop.

The rules (which hooks run, which are coroutines, how errors are named) are
``shipyard.models._hooks.HookSet``'s, shared with the synchronous driver; this class only
says how each hook is awaited here, and whether ``predict`` runs inline on the loop or
in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any, cast

from shipyard.models._hooks import Hook, HookSet

__all__ = ["Hooks"]


class Hooks(HookSet):
    """How to call one predictor on the server's loop; ``inline`` runs predict on it."""

    def __init__(self, predictor: Any, *, inline: bool) -> None:
        super().__init__(predictor)
        # MLflow pyfunc's contract: predict(model_input, params=None).
        try:
            self.takes_params = "params" in inspect.signature(self.predict_fn).parameters
        except (TypeError, ValueError):  # a builtin without a signature
            self.takes_params = False
        self.inline = inline

    async def preprocess(self, data: Any) -> Any:
        return await self._optional("preprocess", self.pre_fn, self.pre_is_async, data)

    async def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        fn: Callable[[Any], Any] = self.predict_fn
        if params is not None:
            fn = functools.partial(cast(Callable[..., Any], self.predict_fn), params=params)
        try:
            if self.predict_is_async:
                return await fn(data)
            if self.inline:
                return fn(data)
            return await asyncio.get_running_loop().run_in_executor(None, fn, data)
        except Exception as err:
            raise self.failed("predict", err) from err

    async def postprocess(self, data: Any) -> Any:
        return await self._optional("postprocess", self.post_fn, self.post_is_async, data)

    async def _optional(self, hook: str, fn: Hook | None, is_async: bool, data: Any) -> Any:
        # A hook the predictor does not have passes the data through: no call at all.
        if fn is None:
            return data
        try:
            out = fn(data)
            return await out if is_async else out
        except Exception as err:
            raise self.failed(hook, err) from err

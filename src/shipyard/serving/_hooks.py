"""The model server's driver of a predictor's hooks, on its event loop.

The rules (which hooks run, which are coroutines, how errors are named) are
``shipyard.models._hooks.HookSet``'s, shared with the synchronous driver; this class only
says how each hook is awaited here, and whether ``predict`` runs inline on the loop or
in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.models._hooks import Hook, HookSet

__all__ = ["Hooks"]


class Hooks(HookSet):
    """How to call one predictor on the server's loop; ``inline`` runs predict on it."""

    def __init__(self, predictor: Any, *, inline: bool) -> None:
        super().__init__(predictor)
        self.inline = inline

    async def preprocess(self, data: Any) -> Any:
        return await self._optional("preprocess", self.pre_fn, self.pre_is_async, data)

    async def predict(self, data: Any) -> Any:
        try:
            if self.predict_is_async:
                return await self.predict_fn(data)
            if self.inline:
                return self.predict_fn(data)
            return await asyncio.get_running_loop().run_in_executor(None, self.predict_fn, data)
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

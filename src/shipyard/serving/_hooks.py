"""A predictor's hooks, each classified once at load time as sync or async.

The per-request path then branches on a boolean instead of inspecting the callable on
every call (the style rule: decide once, at load).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any, cast

from shipyard.errors import PredictorError, ShipyardError

__all__ = ["Hooks"]


def _is_default(predictor: Any, hook: str) -> bool:
    """True when ``hook`` is the base class's identity implementation (skip the call)."""
    from shipyard.models.predictor import Predictor

    method = getattr(type(predictor), hook, None)
    return method is None or method is getattr(Predictor, hook)


class Hooks:
    """How to call one predictor: which hooks exist, which are coroutines, where predict runs."""

    def __init__(self, predictor: Any, *, inline: bool) -> None:
        self.predictor = predictor
        self.name = type(predictor).__name__
        predict = getattr(predictor, "predict", None)
        if not callable(predict):
            raise TypeError(f"{self.name} has no predict() method")
        self._predict: Callable[[Any], Any] = predict
        self.predict_is_async = inspect.iscoroutinefunction(predict)
        # MLflow pyfunc's contract: predict(model_input, params=None).
        try:
            self.takes_params = "params" in inspect.signature(predict).parameters
        except (TypeError, ValueError):  # a builtin without a signature
            self.takes_params = False
        self._pre: Callable[[Any], Any] | None = (
            None if _is_default(predictor, "preprocess") else predictor.preprocess
        )
        self.pre_is_async = self._pre is not None and inspect.iscoroutinefunction(self._pre)
        self._post: Callable[[Any], Any] | None = (
            None if _is_default(predictor, "postprocess") else predictor.postprocess
        )
        self.post_is_async = self._post is not None and inspect.iscoroutinefunction(self._post)
        self.inline = inline
        self.supports_batching = bool(getattr(predictor, "supports_batching", False))

    async def preprocess(self, data: Any) -> Any:
        if self._pre is None:
            return data
        try:
            out = self._pre(data)
            if self.pre_is_async:
                out = await out
        except ShipyardError:
            raise
        except Exception as err:
            raise _predictor_error(self.name, "preprocess", err) from err
        return out

    async def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        fn: Callable[[Any], Any] = self._predict
        if params is not None:
            fn = functools.partial(cast(Callable[..., Any], self._predict), params=params)
        try:
            if self.predict_is_async:
                return await fn(data)
            if self.inline:
                return fn(data)
            return await asyncio.get_running_loop().run_in_executor(None, fn, data)
        except ShipyardError:
            raise
        except Exception as err:
            raise _predictor_error(self.name, "predict", err) from err

    async def postprocess(self, data: Any) -> Any:
        if self._post is None:
            return data
        try:
            out = self._post(data)
            if self.post_is_async:
                out = await out
        except ShipyardError:
            raise
        except Exception as err:
            raise _predictor_error(self.name, "postprocess", err) from err
        return out


def _predictor_error(name: str, hook: str, err: Exception) -> PredictorError:
    return PredictorError(f"{name}.{hook}() raised {type(err).__name__}: {err}")

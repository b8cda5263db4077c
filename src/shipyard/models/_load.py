"""``load_model``: URI -> local directory -> manifest -> a loaded Predictor, or an error."""

from __future__ import annotations

import inspect
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import ModelLoadError, ShipyardError
from shipyard.models._detect import detect_model
from shipyard.models._example import read_input_example
from shipyard.models._uri import resolve_model_uri, uri_stem
from shipyard.models.manifest import ModelManifest, Signature
from shipyard.models.predictor import Predictor

__all__ = ["LoadedModel", "build_predictor", "call_hook", "load_model", "run_hooks"]


@dataclass
class LoadedModel:
    """A model ready to predict: its predictor's ``load`` has already run."""

    name: str
    """The manifest's name, else the stem of the URI's last component."""
    version: str | None
    path: Path
    """The local model directory (a bare file's parent)."""
    manifest: ModelManifest = field(repr=False)
    """The manifest read from ``shipyard.yaml``, or synthesised for a bare file."""
    predictor: Predictor
    # Kept out of repr: an example or a wide signature would flood logs and tracebacks.
    signature: Signature | None = field(repr=False)
    input_example: Any | None = field(repr=False)

    @property
    def format(self) -> str:
        return self.manifest.format

    def predict(self, inputs: Any) -> Any:
        """``preprocess`` -> ``predict`` -> ``postprocess`` for one request, synchronously.

        For scripts, notebooks and batch jobs; the model server drives the hooks itself
        (batching between ``preprocess`` and ``postprocess``).
        """
        return run_hooks(self.predictor, inputs)


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    import asyncio  # only async predictors need it; batch workers never pay for it

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # A loop runs in this thread (a notebook, an async server's start-up): blocking it
    # with asyncio.run would fail, so the coroutine gets a loop of its own in a thread.
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
    """Call a predictor hook, sync or ``async def``, and return its result."""
    result = fn(*args)
    if inspect.isawaitable(result):
        return _run_coroutine(result)
    return result


def run_hooks(predictor: Any, inputs: Any) -> Any:
    """``preprocess`` -> ``predict`` -> ``postprocess``; missing hooks pass data through."""
    # Hooks are optional for duck-typed predictors (any class with load and predict).
    pre = getattr(predictor, "preprocess", None)
    post = getattr(predictor, "postprocess", None)
    data = call_hook(pre, inputs) if pre is not None else inputs
    out = call_hook(predictor.predict, data)
    return call_hook(post, out) if post is not None else out


def build_predictor(model_dir: Path, manifest: ModelManifest) -> Any:
    """Create (not load) the predictor a manifest describes: the user's class or a runtime."""
    if manifest.predictor:
        from shipyard.models.runtimes.custom import import_predictor_class, instantiate_predictor

        cls = import_predictor_class(model_dir, manifest)
        return instantiate_predictor(cls, manifest.predictor)
    if manifest.format == "custom":
        raise ModelLoadError(
            f"The manifest in {model_dir} has format 'custom' but names no predictor; "
            "set 'predictor: module:Class' in shipyard.yaml."
        )
    from shipyard.models.runtimes import runtime_class

    return runtime_class(manifest.format)(manifest)


def load_model(
    uri: str | os.PathLike[str],
    *,
    name: str | None = None,
    method: str | None = None,
    tracking_uri: str | None = None,
) -> LoadedModel:
    """Load the model at ``uri`` (path, ``file://`` or any fsspec URL) and its predictor.

    ``name`` overrides the model's name; ``method`` overrides the manifest's ``method``
    (e.g. serve ``predict_proba`` of a model saved without it). MLflow URIs
    (``models:/name/version``, ``models:/name@alias``, ``runs:/``) are resolved by MLflow's
    client against ``tracking_uri`` (default: ``MLFLOW_TRACKING_URI``).

    Raises ``ModelNotFoundError`` when nothing is there, ``MissingDependencyError`` when
    the model's framework is not installed (naming the extra to install) and
    ``ModelLoadError`` for anything else; it never returns a half-loaded model.
    """
    local = resolve_model_uri(uri, tracking_uri=tracking_uri)
    model_dir, manifest = detect_model(local)
    if method is not None:
        manifest = manifest.model_copy(update={"method": method})
    model_name = name or manifest.name or uri_stem(uri)
    try:
        predictor = build_predictor(model_dir, manifest)
        load = getattr(predictor, "load", None)
        if load is not None:  # optional on duck-typed predictors
            call_hook(load, model_dir)
    except ShipyardError:
        raise
    except Exception as err:
        raise ModelLoadError(
            f"Loading model {model_name!r} from {model_dir} (format {manifest.format}) "
            f"failed: {type(err).__name__}: {err}"
        ) from err
    example = None
    if manifest.input_example:
        example = read_input_example(model_dir / manifest.input_example)
    return LoadedModel(
        name=model_name,
        version=manifest.version,
        path=model_dir,
        manifest=manifest,
        predictor=predictor,
        signature=manifest.signature,
        input_example=example,
    )

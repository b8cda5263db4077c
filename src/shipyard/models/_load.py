"""``load_model``: URI -> local directory -> manifest -> a loaded Predictor, or an error."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import ModelLoadError, ShipyardError
from shipyard.models._detect import detect_model
from shipyard.models._example import read_input_example
from shipyard.models._hooks import SyncHooks, call_hook
from shipyard.models._inputs import InputType, as_input_type, input_type_for
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

    @property
    def input_type(self) -> InputType | None:
        """What the predictor receives: numpy, pandas or dict (see ``Predictor.input_type``)."""
        return input_type_for(self.predictor, self.signature)

    def predict(self, inputs: Any) -> Any:
        """``preprocess`` -> ``predict`` -> ``postprocess`` for one request, synchronously.

        ``inputs`` (an array, a list, a DataFrame or a dict of arrays) reaches the predictor
        as its ``input_type``, a DataFrame's columns matched to the signature by name.
        For scripts, notebooks and batch jobs; the model server drives the hooks itself
        (batching between ``preprocess`` and ``postprocess``).
        """
        return run_hooks(self.predictor, as_input_type(inputs, self.input_type, self.signature))


def run_hooks(predictor: Any, inputs: Any) -> Any:
    """``preprocess`` -> ``predict`` -> ``postprocess``; missing hooks pass data through.

    The predictor's own exceptions propagate unchanged (callers add their context).
    """
    hooks = SyncHooks(predictor, wrap_errors=False)
    try:
        return hooks(inputs)
    finally:
        hooks.close()


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
    trusted: bool = False,
    sha256: str | None = None,
    trusted_types: list[str] | None = None,
    origin: str | None = None,
    lazy: bool = False,
) -> LoadedModel:
    """Load the model at ``uri`` (path, ``file://`` or any fsspec URL) and its predictor.

    ``name`` overrides the model's name; ``method`` overrides the manifest's ``method``
    (e.g. serve ``predict_proba`` of a model saved without it). MLflow URIs
    (``models:/name/version``, ``models:/name@alias``, ``runs:/``) are resolved by MLflow's
    client against ``tracking_uri`` (default: ``MLFLOW_TRACKING_URI``).

    Trust (see ``models._trust``): a model whose loading runs code (pickle, joblib, an
    MLflow pyfunc, a saved predictor class) from a remote URI loads only with
    ``trusted=True``, a matching ``sha256`` of its content, or a URI prefix listed in
    ``SHIPYARD_TRUSTED_MODEL_URIS``; local paths and MLflow registry URIs are the user's own
    choice. skops types beyond the safe defaults come from ``trusted_types`` (or
    ``SHIPYARD_TRUSTED_TYPES``; all with ``trusted=True``), never from the model's manifest.
    ``origin`` names the URI the files at ``uri`` were copied from (a pod's /mnt/models):
    its trust rule is the one applied. ``lazy``: a built-in scikit-learn tree ensemble
    whose compiled cache is complete is served from that cache alone, scikit-learn
    imported and the file unpickled only for the first input the cache cannot take
    (seconds of start-up saved where the framework is rarely needed: batch actors).

    Raises ``ModelNotFoundError`` when nothing is there, ``MissingDependencyError`` when
    the model's framework is not installed (naming the extra to install) and
    ``ModelLoadError`` for anything else (``UntrustedModelError`` for a refused one); it
    never returns a half-loaded model.
    """
    from shipyard.models._trust import check_trust, skops_types

    local = resolve_model_uri(uri, tracking_uri=tracking_uri)
    model_dir, manifest = detect_model(local)
    explicit = check_trust(origin or uri, local, manifest, trusted=trusted, sha256=sha256)
    manifest = skops_types(manifest, trusted_types or [], explicit)
    if method is not None:
        manifest = manifest.model_copy(update={"method": method})
    model_name = name or manifest.name or uri_stem(uri)
    try:
        predictor = build_predictor(model_dir, manifest)
        if lazy:
            from shipyard.models.runtimes.sklearn import SklearnPredictor

            if isinstance(predictor, SklearnPredictor):  # the runtime that can defer it
                predictor.lazy = True
        load = getattr(predictor, "load", None)
        if load is not None:  # optional on duck-typed predictors
            call_hook(load, model_dir)
        input_type_for(predictor, manifest.signature)  # a bad declaration fails the load
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

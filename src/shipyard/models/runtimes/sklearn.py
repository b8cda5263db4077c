"""scikit-learn (and any picklable object with ``predict``): joblib, pickle or skops files."""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shipyard.errors import (
    ConfigError,
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    ShipyardError,
)
from shipyard.models._signature import is_dataframe
from shipyard.models._trust import ALL_TYPES, refuse_skops
from shipyard.models.runtimes._base import FileRuntime, require, single_array
from shipyard.models.runtimes._forest import FastPredict, forest_fast_path

__all__ = ["SERIALIZATIONS", "SklearnPredictor", "save_sklearn"]

log = logging.getLogger("shipyard.models.runtimes.sklearn")

#: File suffix for each serialization.
SERIALIZATIONS: dict[str, str] = {"joblib": ".joblib", "pickle": ".pkl", "skops": ".skops"}
_SUFFIXES = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle", ".skops": "skops"}
#: Top-level modules a pickle may need, and the extra that installs each.
_EXTRAS: dict[str, tuple[str, str]] = {
    "sklearn": ("scikit-learn", "sklearn"),
    "joblib": ("joblib", "sklearn"),
    "skops": ("skops", "sklearn"),
    "xgboost": ("xgboost", "xgboost"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "pandas": ("pandas", "batch"),
}


def _pandas() -> Any:
    # Fitted on a DataFrame, the estimator wants its columns named; a core install that
    # loaded the pickle some other way may still lack pandas.
    return require(
        "pandas", package="pandas", extra="batch", purpose="models fitted on a DataFrame"
    )


_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)


def _serialization_for(path: Path, declared: str | None) -> str:
    if declared:
        if declared not in SERIALIZATIONS:
            raise ModelLoadError(
                f"Unknown serialization {declared!r} for {path}; "
                f"expected one of: {', '.join(SERIALIZATIONS)}."
            )
        return declared
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise ModelLoadError(
            f"Cannot tell how {path} was serialized; name it *.joblib, *.pkl or *.skops, "
            "or set 'serialization' in shipyard.yaml."
        ) from None


def save_sklearn(
    model: Any, model_dir: Path, serialization: str | None
) -> tuple[str, str, list[str]]:
    """Write ``model``; returns (file name, serialization, trusted types for skops)."""
    ser = serialization or "joblib"
    if ser not in SERIALIZATIONS:
        raise ConfigError(
            f"Unknown serialization {ser!r} for a scikit-learn model; "
            f"use one of: {', '.join(SERIALIZATIONS)}."
        )
    name = "model" + SERIALIZATIONS[ser]
    path = model_dir / name
    trusted: list[str] = []
    if ser == "joblib":
        joblib = require("joblib", package="joblib", extra="sklearn", purpose="joblib files")
        joblib.dump(model, path)
    elif ser == "pickle":
        with path.open("wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        sio = require("skops.io", package="skops", extra="sklearn", purpose="skops files")
        sio.dump(model, path)
        # The author vouches for the types of the object they just saved; loading trusts
        # exactly these and refuses any other.
        trusted = sorted(sio.get_untrusted_types(file=path))
    return name, ser, trusted


class SklearnPredictor(FileRuntime):
    """Calls the estimator's ``predict`` (or the manifest's ``method``) on each batch."""

    supports_batching: ClassVar[bool] = True
    default_files = ("model.joblib", "model.pkl", "model.pickle", "model.skops")

    #: Serve a supported tree ensemble from its compiled cache alone when that cache is
    #: complete: scikit-learn is imported and the file unpickled only when an input needs
    #: them (``load_model(..., lazy=True)`` sets it; skops files always load, as their
    #: type check is the load).
    lazy: bool = False
    _estimator: Any = None
    _lock = threading.Lock()  # per class: taken only for a lazy estimator's one load

    def load(self, model_dir: Path) -> None:
        super().load(model_dir)
        path = self.model_path()
        ser = _serialization_for(path, self.manifest.serialization if self.manifest else None)
        self._file = (path, ser)
        self._estimator = None
        method = self.method or "predict"
        if self.lazy and ser != "skops":
            from shipyard.models.trees import load_cached

            trees, why = load_cached(path, method)
            if trees is not None:
                self._trees = trees
                self.engine_note: str | None = f"{trees.note}; scikit-learn not loaded"
                self._fast: FastPredict | None = None
                self.feature_names: list[str] | None = trees.recipe.feature_names
                self.n_features: int | None = trees.recipe.n_features
                return
            log.debug("Loading %s in full: %s", path, why)
        self._load_estimator()
        from shipyard.models.trees import attach

        self._trees, self.engine_note = attach(self.estimator, method, path)
        # Without the compiled evaluator, small batches still skip sklearn's dispatch.
        self._fast = forest_fast_path(self.estimator, method) if self._trees is None else None
        names = getattr(self.estimator, "feature_names_in_", None)
        self.feature_names = [str(n) for n in names] if names is not None else None
        self.n_features = getattr(self.estimator, "n_features_in_", None)

    @property
    def estimator(self) -> Any:
        """The unpickled model (loaded now if ``lazy`` left it on disk)."""
        if self._estimator is None:
            self._load_estimator_once()
        return self._estimator

    @estimator.setter
    def estimator(self, value: Any) -> None:
        self._estimator = value

    def _load_estimator_once(self) -> None:
        if getattr(self, "_file", None) is None:
            raise ModelLoadError(f"{type(self).__name__}.load() has not been called yet.")
        with self._lock:  # two requests may need it at once: one unpickling
            if self._estimator is None:
                log.info(
                    "Loading scikit-learn and %s: an input the compiled trees do not take "
                    "(the trees keep answering every input they take).",
                    self._file[0],
                )
                try:
                    self._load_estimator()
                except ShipyardError:
                    raise
                except Exception as err:
                    # What the full load would have raised at load time (``load_model``
                    # wraps it alike): the model's error, not the input's.
                    raise ModelLoadError(
                        f"Loading the model in {self._file[0]} (for an input the compiled "
                        f"trees do not take) failed: {type(err).__name__}: {err}"
                    ) from err

    def _load_estimator(self) -> None:
        path, ser = self._file
        estimator = self._read(path, ser)
        method = self.method or "predict"
        fn = getattr(estimator, method, None)
        if not callable(fn):
            have = [m for m in _METHODS if callable(getattr(estimator, m, None))]
            raise ModelLoadError(
                f"The model in {path} ({type(estimator).__name__}) has no method "
                f"{method!r}; it has: {', '.join(have) or 'none of ' + ', '.join(_METHODS)}. "
                "Set 'method' in shipyard.yaml to one of those."
            )
        self._fn = fn
        self._estimator = estimator

    def _read(self, path: Path, ser: str) -> Any:
        try:
            return self._unpickle(path, ser)
        except ModuleNotFoundError as err:
            # A pickle names the modules of its classes; one is not installed here.
            root = (err.name or "").split(".")[0]
            if root in _EXTRAS:
                package, extra = _EXTRAS[root]
                raise MissingDependencyError(package, extra, f"the model in {path}") from err
            reqs = ", ".join(self.manifest.requirements) if self.manifest else ""
            raise ModelLoadError(
                f"The model in {path} needs the module {err.name!r}, which is not installed. "
                + (f"The model lists its requirements: {reqs}. " if reqs else "")
                + "Install it in this environment (or, for your own code, pass "
                "code_paths=... to save_model)."
            ) from err

    def _unpickle(self, path: Path, ser: str) -> Any:
        if ser == "joblib":
            joblib = require("joblib", package="joblib", extra="sklearn", purpose="joblib files")
            return joblib.load(path)
        if ser == "pickle":
            with path.open("rb") as fh:
                return pickle.load(fh)
        sio = require("skops.io", package="skops", extra="sklearn", purpose="skops files")
        needed = sorted(sio.get_untrusted_types(file=path))
        # Set by load_model from the caller and the allow-list (``models._trust``), never
        # from the file's own shipyard.yaml: a file cannot vouch for itself.
        trusted = set(self.manifest.trusted_types) if self.manifest else set()
        refused = [] if ALL_TYPES in trusted else [t for t in needed if t not in trusted]
        if refused:
            raise refuse_skops(path, refused)
        return sio.load(path, trusted=needed)

    def _prepare(self, inputs: Any) -> Any:
        if (
            isinstance(inputs, Mapping)
            and self.feature_names
            and set(inputs) == set(self.feature_names)
        ):
            pd = _pandas()
            return pd.DataFrame({n: np.asarray(inputs[n]).reshape(-1) for n in self.feature_names})
        x = single_array(inputs, f"scikit-learn model {type(self.estimator).__name__}")
        if is_dataframe(x):
            # Fitted on a bare array: hand it one, or sklearn warns about feature names.
            if self.feature_names is None and self.n_features is not None:
                return x.to_numpy()
            return x
        if (
            self.feature_names is not None
            and isinstance(x, np.ndarray)
            and x.ndim == 2
            and x.shape[1] == len(self.feature_names)
        ):
            pd = _pandas()
            return pd.DataFrame(x, columns=self.feature_names)
        return x

    def _tree_input(self, inputs: Any) -> Any:
        """The matrix the compiled trees take, or None to let scikit-learn check the input."""
        if isinstance(inputs, Mapping) and len(inputs) == 1:
            inputs = next(iter(inputs.values()))
        if isinstance(inputs, np.ndarray):
            return inputs
        if is_dataframe(inputs) and (
            self.feature_names is None or [str(c) for c in inputs.columns] == self.feature_names
        ):
            # Columns in the fitted order: the same matrix to the trees (any other order
            # or name is scikit-learn's to refuse).
            return inputs.to_numpy()
        return None

    def predict(self, inputs: Any) -> Any:
        if self._trees is not None:
            out = self._trees.predict(self._tree_input(inputs))
            if out is not None:
                return out
        if self._estimator is None:
            self._load_estimator_once()
        prepared = self._prepare(inputs)
        if self._fast is not None and isinstance(prepared, np.ndarray):
            fast = self._fast(prepared)
            if fast is not None:
                return fast
        try:
            out = self._fn(prepared)
        except (ValueError, TypeError) as err:
            # sklearn raises ValueError for wrong widths and unparseable values: the
            # caller's data, so a 400 that says what the estimator said.
            raise InvalidInputError(
                f"{type(self.estimator).__name__}.{self.method or 'predict'} rejected the "
                f"input: {err}"
            ) from err
        if hasattr(out, "toarray"):  # sparse output of a transformer
            out = out.toarray()
        return np.asarray(out)

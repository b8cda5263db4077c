"""MLflow model directories (an ``MLmodel`` file): pyfunc, or the native flavor without mlflow.

With mlflow installed, every flavor loads through ``mlflow.pyfunc``. Without it, the
flavors Shipyard runs natively (sklearn, xgboost, lightgbm, onnx) are loaded straight
from the files the ``MLmodel`` file names, so a model server image need not carry mlflow.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

from shipyard.errors import InvalidInputError, MissingDependencyError, ModelLoadError
from shipyard.models.manifest import ModelManifest
from shipyard.models.runtimes._base import FileRuntime, require

__all__ = ["MLflowPredictor", "mlflow_installed", "native_manifest"]

_MLMODEL = "MLmodel"


def _read_mlmodel(model_dir: Path) -> dict[str, Any]:
    path = model_dir / _MLMODEL
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ModelLoadError(f"Cannot read the MLflow model file {path}: {err}") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("flavors"), dict):
        raise ModelLoadError(f"{path} is not an MLflow MLmodel file (no 'flavors' mapping).")
    return raw


def mlflow_installed() -> bool:
    """Whether mlflow can be imported (checked without importing it: that takes seconds)."""
    return importlib.util.find_spec("mlflow") is not None


def native_manifest(model_dir: Path) -> ModelManifest | None:
    """A manifest for the first flavor Shipyard loads natively, or ``None``."""
    flavors: dict[str, Any] = _read_mlmodel(model_dir)["flavors"]
    sk = flavors.get("sklearn")
    if isinstance(sk, dict) and sk.get("pickled_model"):
        if sk.get("serialization_format", "cloudpickle") in ("pickle", "cloudpickle"):
            return ModelManifest(
                format="sklearn", model_file=sk["pickled_model"], serialization="pickle"
            )
        if sk.get("serialization_format") == "skops":
            return ModelManifest(
                format="sklearn", model_file=sk["pickled_model"], serialization="skops"
            )
    for flavor, fmt in (("xgboost", "xgboost"), ("lightgbm", "lightgbm"), ("onnx", "onnx")):
        spec = flavors.get(flavor)
        if isinstance(spec, dict) and spec.get("data"):
            return ModelManifest(format=fmt, model_file=spec["data"])
    return None


class MLflowPredictor(FileRuntime):
    """Runs an MLflow model: ``pyfunc`` when mlflow is installed, else its native flavor."""

    supports_batching: ClassVar[bool] = True

    def _mlflow_dir(self) -> Path:
        if self.model_dir is None:
            raise ModelLoadError("MLflowPredictor.load() has not been called yet.")
        if self.manifest is not None and self.manifest.model_file:
            return self.model_path()
        return self.model_dir

    def load(self, model_dir: Path) -> None:
        super().load(model_dir)
        mdir = self._mlflow_dir()
        self.native: Any = None
        self.pyfunc: Any = None
        if mlflow_installed():
            pyfunc = require(
                "mlflow.pyfunc", package="mlflow", extra="mlflow", purpose="MLflow models"
            )
            self.pyfunc = pyfunc.load_model(str(mdir))
            return
        manifest = native_manifest(mdir)
        if manifest is None:
            flavors = ", ".join(_read_mlmodel(mdir)["flavors"])
            raise MissingDependencyError(
                "mlflow", "mlflow", f"the MLflow model in {mdir} (flavors: {flavors})"
            )
        if self.method and manifest.format == "sklearn":
            manifest = manifest.model_copy(update={"method": self.method})
        from shipyard.models.runtimes import runtime_class

        self.native = runtime_class(manifest.format)(manifest)
        self.native.load(mdir)

    def predict(self, inputs: Any, params: dict[str, Any] | None = None) -> Any:
        if self.native is not None:
            if params:
                raise InvalidInputError(
                    "This MLflow model runs through its native flavor (mlflow is not "
                    "installed), which takes no params; install shipyard[mlflow] or drop them."
                )
            return self.native.predict(inputs)
        try:
            out = (
                self.pyfunc.predict(inputs, params=params)
                if params
                else self.pyfunc.predict(inputs)
            )
        except Exception as err:  # pyfunc raises MlflowException for schema mismatches
            raise InvalidInputError(f"The MLflow model rejected the input: {err}") from err
        if type(out).__name__ == "DataFrame":
            return out
        return np.asarray(out)

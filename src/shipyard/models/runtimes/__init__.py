"""Built-in runtimes, one module per model format, imported only when a model needs one."""

from __future__ import annotations

import importlib
from typing import Any

from shipyard.errors import ModelLoadError

__all__ = ["RUNTIMES", "runtime_class"]

#: Format name -> "module:Class" of its runtime. Nothing is imported until a model asks.
RUNTIMES: dict[str, str] = {
    "sklearn": "shipyard.models.runtimes.sklearn:SklearnPredictor",
    "xgboost": "shipyard.models.runtimes.xgboost:XGBoostPredictor",
    "lightgbm": "shipyard.models.runtimes.lightgbm:LightGBMPredictor",
    "onnx": "shipyard.models.runtimes.onnx:ONNXPredictor",
    "torchscript": "shipyard.models.runtimes.torchscript:TorchScriptPredictor",
    "torch-export": "shipyard.models.runtimes.torch_export:TorchExportPredictor",
    "mlflow": "shipyard.models.runtimes.mlflow:MLflowPredictor",
}


def runtime_class(fmt: str) -> type[Any]:
    """The runtime class for a format name; ``ModelLoadError`` listing the known ones if none."""
    try:
        ref = RUNTIMES[fmt]
    except KeyError:
        raise ModelLoadError(
            f"Unknown model format {fmt!r}; known formats: {', '.join(RUNTIMES)} and custom "
            "(a predictor class). Fix 'format' in shipyard.yaml."
        ) from None
    module, _, name = ref.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module), name)
    return cls

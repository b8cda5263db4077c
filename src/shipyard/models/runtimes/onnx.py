"""ONNX models, run with onnxruntime on the CPU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shipyard.errors import ConfigError, InvalidInputError, ModelLoadError
from shipyard.models._signature import is_dataframe
from shipyard.models.runtimes._base import FileRuntime, require

__all__ = ["ONNXPredictor", "save"]

_PURPOSE = "ONNX models"
_ORT_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint64)": np.uint64,
    "tensor(uint32)": np.uint32,
    "tensor(uint16)": np.uint16,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}


def save(model: Any, model_dir: Path) -> str:
    """Write ONNX bytes or an ``onnx.ModelProto`` as ``model.onnx``."""
    name = "model.onnx"
    if isinstance(model, (bytes, bytearray)):
        data = bytes(model)
    elif callable(getattr(model, "SerializeToString", None)):
        data = model.SerializeToString()
    else:
        raise ConfigError(
            f"format='onnx' needs ONNX bytes or an onnx.ModelProto, got {type(model).__name__}."
        )
    (model_dir / name).write_bytes(data)
    return name


def _to_array(value: Any) -> Any:
    """onnxruntime returns arrays, or lists of dicts for ZipMap (classifier probabilities)."""
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        keys = list(value[0])
        return np.asarray([[row[k] for k in keys] for row in value])
    return np.asarray(value)


class ONNXPredictor(FileRuntime):
    """Feeds the session's inputs by name; returns one array, or a dict for several outputs.

    A single array (or DataFrame) feeds a model with one input; for a model with one input
    per feature column (as skl2onnx writes for tabular pipelines) its columns are split.
    """

    supports_batching: ClassVar[bool] = True
    default_files = ("model.onnx",)

    def load(self, model_dir: Path) -> None:
        super().load(model_dir)
        ort = require("onnxruntime", package="onnxruntime", extra="onnx", purpose=_PURPOSE)
        path = self.model_path()
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelLoadError(f"onnxruntime cannot load {path}: {err}") from err
        self.inputs = [(i.name, _ORT_TYPES.get(i.type), i.type) for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # A graph exported with a fixed first dimension (e.g. [1, 3]) takes exactly that
        # many rows: concatenating requests would break it, so adaptive batching is off.
        batchable = all(
            i.shape and not isinstance(i.shape[0], int) for i in self.session.get_inputs()
        )
        # An instance attribute shadows the class-wide default for this model only.
        object.__setattr__(self, "supports_batching", batchable)
        if self.method is not None and self.method not in self.output_names:
            raise ModelLoadError(
                f"The ONNX model {path} has no output {self.method!r} (set as 'method' in "
                f"shipyard.yaml); its outputs are: {', '.join(self.output_names)}."
            )

    def _cast(self, name: str, dtype: Any, type_name: str, value: Any) -> Any:
        arr = np.asarray(value)
        if dtype is None:
            return arr
        try:
            return arr.astype(dtype, copy=False)
        except (ValueError, TypeError) as err:
            raise InvalidInputError(
                f"Input {name!r} cannot be converted to {type_name} for the ONNX model: {err}"
            ) from err

    def _feeds(self, inputs: Any) -> dict[str, Any]:
        names = [n for n, _, _ in self.inputs]
        if is_dataframe(inputs):
            if len(names) > 1 and all(n in inputs.columns for n in names):
                return {n: inputs[n].to_numpy().reshape(-1, 1) for n in names}
            inputs = inputs.to_numpy()
        if isinstance(inputs, Mapping):
            if set(inputs) == set(names):
                return dict(inputs)
            if len(names) == 1 and len(inputs) == 1:
                return {names[0]: next(iter(inputs.values()))}
            raise InvalidInputError(
                f"The ONNX model takes inputs {', '.join(repr(n) for n in names)}, got "
                f"{', '.join(repr(k) for k in inputs)}."
            )
        arr = np.asarray(inputs)
        if len(names) == 1:
            return {names[0]: arr}
        if arr.ndim == 2 and arr.shape[1] == len(names):
            return {n: arr[:, [i]] for i, n in enumerate(names)}
        raise InvalidInputError(
            f"The ONNX model takes {len(names)} inputs ({', '.join(names)}); send them by "
            f"name, or one 2-D array with {len(names)} columns (got shape {list(arr.shape)})."
        )

    def predict(self, inputs: Any) -> Any:
        feeds = self._feeds(inputs)
        cast = {n: self._cast(n, dt, tn, feeds[n]) for n, dt, tn in self.inputs}
        wanted = [self.method] if self.method else None
        try:
            results = self.session.run(wanted, cast)
        except Exception as err:  # onnxruntime's InvalidArgument: wrong shape or type
            raise InvalidInputError(f"onnxruntime rejected the input: {err}") from err
        if self.method:
            return _to_array(results[0])
        if len(results) == 1:
            return _to_array(results[0])
        return {n: _to_array(r) for n, r in zip(self.output_names, results, strict=True)}

"""The model directory manifest (``shipyard.yaml``) and the signature it carries."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard._validation import describe_validation_error
from shipyard.errors import ModelLoadError

__all__ = [
    "DATATYPES",
    "MANIFEST_FILE",
    "ModelManifest",
    "Signature",
    "TensorSpec",
    "read_manifest",
    "write_manifest",
]

MANIFEST_FILE = "shipyard.yaml"

#: Open Inference Protocol datatype names, the vocabulary of every signature.
DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)


class TensorSpec(BaseModel):
    """One named input or output tensor."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """The tensor's name as it appears on the wire (e.g. ``input-0``)."""
    datatype: str
    """An Open Inference Protocol datatype: one of BOOL, UINT8..64, INT8..64, FP16/32/64, BYTES."""
    shape: list[int]
    """Dimensions; ``-1`` marks a variable one (the batch dimension is always variable)."""
    allow_nan: bool = True
    """Whether NaN values are accepted (floating types only)."""
    columns: list[str] | None = None
    """For tabular models: column names of the second axis, used by DataFrame protocols."""


class Signature(BaseModel):
    """What a model takes and gives."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[TensorSpec]
    outputs: list[TensorSpec] = Field(default_factory=list)


class ModelManifest(BaseModel):
    """Contents of ``shipyard.yaml`` in a model directory written by ``save_model``."""

    model_config = ConfigDict(extra="forbid")

    format: str
    """Runtime format: sklearn, xgboost, lightgbm, onnx, torchscript, mlflow or custom."""
    model_file: str | None = None
    """File (or folder) inside the model directory that holds the model bytes."""
    serialization: str | None = None
    """How ``model_file`` was written, where a format has several (joblib, pickle, skops)."""
    predictor: str | None = None
    """Import path ``module:Class`` of a custom predictor, if any."""
    predictor_source: str | None = None
    """File inside the model directory holding the predictor's module, saved with the model."""
    signature: Signature | None = None
    input_example: str | None = None
    """File inside the model directory holding an input example (JSON)."""
    requirements: list[str] = Field(default_factory=list)
    name: str | None = None
    version: str | None = None
    shipyard_version: str = "0.1.0"
    method: str | None = None
    """Estimator method that ``predict`` calls (scikit-learn: e.g. ``predict_proba``);
    for runtimes with named outputs (ONNX), the one output to return. Default: ``predict``
    / all outputs."""
    code_paths: list[str] = Field(default_factory=list)
    """Helper modules/packages (inside the model directory) the predictor imports; their
    folder is put on ``sys.path`` when the model loads."""
    trusted_types: list[str] = Field(default_factory=list)
    """skops only: types beyond skops' defaults that the author of this file trusts;
    loading refuses any other type the file needs."""


def read_manifest(model_dir: Path) -> ModelManifest | None:
    """Read ``shipyard.yaml`` from ``model_dir``; ``None`` if the directory has none.

    Raises ``ModelLoadError`` naming the file and the offending key if it is invalid.
    """
    path = Path(model_dir) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ModelLoadError(f"Cannot read the model manifest {path}: {err}") from err
    if not isinstance(raw, dict):
        raise ModelLoadError(
            f"The model manifest {path} must be a YAML mapping (format: ..., model_file: ...), "
            f"got {type(raw).__name__}."
        )
    try:
        return ModelManifest.model_validate(raw)
    except ValidationError as err:
        problems = describe_validation_error(err, top="(top level)")
        raise ModelLoadError(
            f"The model manifest {path} is invalid ({problems}). Fix those keys, or "
            "re-create the directory with save_model()."
        ) from err


def write_manifest(model_dir: Path, manifest: ModelManifest) -> Path:
    """Write ``manifest`` as ``shipyard.yaml`` into ``model_dir``; returns the file's path."""
    path = Path(model_dir) / MANIFEST_FILE
    data = manifest.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path

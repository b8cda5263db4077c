"""Model directories: save them, find them by URI, detect their format, load a Predictor.

Shared by the model server and batch inference, so importing this package stays light:
no machine-learning framework, pandas or fsspec is imported until a model needs it.
"""

from __future__ import annotations

from shipyard.models._load import LoadedModel, load_model
from shipyard.models._save import FORMATS, save_model
from shipyard.models._signature import (
    check_inputs,
    datatype_for_dtype,
    dtype_for_datatype,
    infer_signature,
)
from shipyard.models._uri import resolve_model_uri
from shipyard.models.manifest import (
    MANIFEST_FILE,
    ModelManifest,
    Signature,
    TensorSpec,
    read_manifest,
)
from shipyard.models.predictor import Predictor

__all__ = [
    "FORMATS",
    "MANIFEST_FILE",
    "LoadedModel",
    "ModelManifest",
    "Predictor",
    "Signature",
    "TensorSpec",
    "check_inputs",
    "datatype_for_dtype",
    "dtype_for_datatype",
    "infer_signature",
    "load_model",
    "read_manifest",
    "resolve_model_uri",
    "save_model",
]

"""Model directories: save them, find them by URI, detect their format, load a Predictor.

Shared by the model server and batch inference, so importing this package stays light:
no machine-learning framework, pandas or fsspec is imported until a model needs it.

Example (run as a test)::

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from shipyard.models import check_inputs, load_model, save_model

    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1], [0.1, 0.8]])
    clf = LogisticRegression().fit(x, [0, 1, 1, 0])
    path = save_model(clf, tmp / "clf", input_example=x[:2], method="predict_proba")

    model = load_model(str(path))             # or "file://...", "s3://...", "memory://..."
    assert model.signature.inputs[0].shape == [-1, 2]
    assert model.signature.outputs[0].shape == [-1, 2]
    check_inputs(model.signature, {"input-0": x})  # raises InvalidInputError if not
    probabilities = model.predict(x)          # preprocess -> predict -> postprocess
    assert probabilities.shape == (4, 2)

A directory holds the model file, ``shipyard.yaml`` (format, signature, requirements,
predictor) and ``input_example.json``; ``save_model(..., predictor=MyPredictor)`` also
copies the predictor's module into ``code/`` so the directory loads anywhere. Bare files
(``model.joblib``, ``model.onnx``, ``model.pt``, XGBoost ``.json``, LightGBM ``.txt``)
and MLflow directories load without a manifest.
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

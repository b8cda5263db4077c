"""The public API of shipyard.models is pinned, and importing it stays light."""

from __future__ import annotations

import json
from pathlib import Path

import shipyard.models
from shipyard.models.predictor import Predictor


def test_public_api_is_pinned() -> None:
    assert sorted(shipyard.models.__all__) == sorted(
        [
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
    )
    for name in shipyard.models.__all__:
        assert hasattr(shipyard.models, name), name


def test_serving_predictor_is_the_models_predictor() -> None:
    import shipyard.serving

    assert shipyard.serving.Predictor is Predictor
    assert shipyard.models.Predictor is Predictor


def test_top_level_save_and_load_are_the_models_ones() -> None:
    import shipyard

    assert shipyard.save_model is shipyard.models.save_model
    assert shipyard.load_model is shipyard.models.load_model


def test_import_is_light(run_python: object, tmp_path: Path) -> None:
    # The model server's cold start imports this package: no framework may come with it.
    code = (
        "import json, sys, shipyard.models\n"
        "heavy = ['sklearn', 'pandas', 'fsspec', 'joblib', 'scipy', 'onnxruntime', 'torch',"
        " 'xgboost', 'lightgbm', 'skops', 'mlflow']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    assert callable(run_python)
    assert json.loads(run_python(code, tmp_path)) == []


def test_the_package_docstring_example_runs(tmp_path: Path) -> None:
    doc = shipyard.models.__doc__ or ""
    block = doc.split("Example (run as a test)::\n", 1)[1].split("\n\nA directory", 1)[0]
    code = "\n".join(line.removeprefix("    ") for line in block.splitlines())
    assert "save_model" in code and "load_model" in code
    exec(compile(code, "shipyard.models.__doc__", "exec"), {"tmp": tmp_path})
    assert (tmp_path / "clf" / "shipyard.yaml").is_file()

"""Bare files and directories without shipyard.yaml are recognised by what they hold."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import yaml

from shipyard.errors import MissingDependencyError, ModelLoadError, ModelNotFoundError
from shipyard.models import load_model, save_model
from shipyard.models.runtimes import mlflow as mlflow_runtime
from shipyard.models.runtimes.sklearn import SklearnPredictor


@pytest.mark.parametrize("filename", ["model.joblib", "clf.pkl", "clf.pickle"])
def test_bare_pickle_files(tmp_path: Path, classifier: Any, xy: Any, filename: str) -> None:
    x, _ = xy
    path = tmp_path / filename
    if filename.endswith(".joblib"):
        joblib.dump(classifier, path)
    else:
        path.write_bytes(pickle.dumps(classifier))
    loaded = load_model(path)
    assert loaded.name == Path(filename).stem
    assert loaded.path == tmp_path.resolve()
    assert loaded.manifest.model_file == filename
    assert loaded.signature is None and loaded.input_example is None
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))


def test_bare_skops_file(tmp_path: Path, classifier: Any, xy: Any) -> None:
    import skops.io as sio

    x, _ = xy
    sio.dump(classifier, tmp_path / "model.skops")
    loaded = load_model(tmp_path / "model.skops")
    assert loaded.manifest.serialization == "skops"
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))


def test_directory_with_one_model_file(tmp_path: Path, classifier: Any, xy: Any) -> None:
    x, _ = xy
    model_dir = tmp_path / "fraud-detector"
    model_dir.mkdir()
    joblib.dump(classifier, model_dir / "estimator.joblib")
    (model_dir / "README.md").write_text("notes")
    (model_dir / "input_example.json").write_text('{"inputs": []}')
    (model_dir / "requirements.txt").write_text("scikit-learn\n")
    loaded = load_model(model_dir)
    assert loaded.name == "fraud-detector"
    assert loaded.manifest.model_file == "estimator.joblib"
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))


def test_directory_without_a_model_lists_its_contents(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match=r"No model found.*notes\.txt.*model\.joblib"):
        load_model(tmp_path)


def test_directory_with_several_models_is_ambiguous(tmp_path: Path, classifier: Any) -> None:
    joblib.dump(classifier, tmp_path / "a.joblib")
    joblib.dump(classifier, tmp_path / "b.joblib")
    with pytest.raises(ModelLoadError, match=r"several model files \(a\.joblib, b\.joblib\)"):
        load_model(tmp_path)


def test_unknown_file_suffix(tmp_path: Path) -> None:
    (tmp_path / "weights.h5").write_bytes(b"\x89HDF")
    with pytest.raises(ModelLoadError, match=r"Cannot tell the format of .*weights\.h5"):
        load_model(tmp_path / "weights.h5")


def test_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(tmp_path / "nope.joblib")


def test_file_uri(tmp_path: Path, classifier: Any, xy: Any) -> None:
    x, _ = xy
    joblib.dump(classifier, tmp_path / "model.joblib")
    loaded = load_model((tmp_path / "model.joblib").as_uri())
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))


def _mlflow_dir(root: Path, classifier: Any, flavors: dict[str, Any]) -> Path:
    model_dir = root / "mlflow-model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(pickle.dumps(classifier))
    (model_dir / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}))
    return model_dir


def test_mlflow_sklearn_flavor_loads_natively_without_mlflow(
    tmp_path: Path, classifier: Any, xy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The MLmodel layout mlflow.sklearn.save_model writes (trimmed to what is read).
    monkeypatch.setattr(mlflow_runtime, "mlflow_installed", lambda: False)
    x, _ = xy
    flavors = {
        "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.pkl"},
        "sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle"},
    }
    loaded = load_model(_mlflow_dir(tmp_path, classifier, flavors))
    assert loaded.format == "mlflow"
    assert loaded.name == "mlflow-model"
    assert isinstance(loaded.predictor, mlflow_runtime.MLflowPredictor)
    assert isinstance(loaded.predictor.native, SklearnPredictor)
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))


def test_mlflow_only_flavor_needs_mlflow(
    tmp_path: Path, classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlflow_runtime, "mlflow_installed", lambda: False)
    flavors = {"python_function": {"loader_module": "mlflow.pyfunc.model", "python_model": "x"}}
    with pytest.raises(MissingDependencyError, match=r"pip install 'shipyard\[mlflow\]'"):
        load_model(_mlflow_dir(tmp_path, classifier, flavors) / "MLmodel")


# MLflow warns about its own type-hint inference the first time its pyfunc module loads
# (so only in some test orders); not ours to fix. It runs where mlflow is installed.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_mlflow_pyfunc_when_installed(tmp_path: Path, classifier: Any, xy: Any) -> None:
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    x, _ = xy
    mlflow_sklearn.save_model(classifier, str(tmp_path / "mlm"))
    loaded = load_model(tmp_path / "mlm")
    assert isinstance(loaded.predictor, mlflow_runtime.MLflowPredictor)
    assert loaded.predictor.pyfunc is not None
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))


def test_pickle_needing_an_absent_framework_names_the_extra(
    tmp_path: Path, classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    joblib.dump(classifier, tmp_path / "model.joblib")
    # As on a server image without scikit-learn: importing it fails.
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingDependencyError, match=r"scikit-learn.*shipyard\[sklearn\]"):
        load_model(tmp_path / "model.joblib")


def test_pickle_needing_an_unknown_module_says_which(tmp_path: Path) -> None:
    module_dir = tmp_path / "src"
    module_dir.mkdir()
    (module_dir / "bespoke_model.py").write_text(
        "class Model:\n    def predict(self, x):\n        return x\n"
    )
    sys.path.insert(0, str(module_dir))
    try:
        import bespoke_model

        (tmp_path / "model.pkl").write_bytes(pickle.dumps(bespoke_model.Model()))
    finally:
        sys.path.remove(str(module_dir))
        sys.modules.pop("bespoke_model", None)
    with pytest.raises(ModelLoadError, match=r"needs the module 'bespoke_model'.*code_paths"):
        load_model(tmp_path / "model.pkl")


def test_save_model_copies_an_existing_model_file(tmp_path: Path, classifier: Any, xy: Any) -> None:
    x, _ = xy
    joblib.dump(classifier, tmp_path / "trained.joblib")
    path = save_model(tmp_path / "trained.joblib", tmp_path / "packaged", name="clf", version="7")
    loaded = load_model(path)
    assert (loaded.format, loaded.manifest.model_file, loaded.manifest.serialization) == (
        "sklearn",
        "trained.joblib",
        "joblib",
    )
    assert (loaded.name, loaded.version) == ("clf", "7")
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))


def test_save_model_packages_an_mlflow_directory(
    tmp_path: Path, classifier: Any, xy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlflow_runtime, "mlflow_installed", lambda: False)
    x, _ = xy
    flavors = {"sklearn": {"pickled_model": "model.pkl", "serialization_format": "pickle"}}
    src = _mlflow_dir(tmp_path, classifier, flavors)
    path = save_model(src, tmp_path / "packaged", input_example=x[:2])
    loaded = load_model(path)
    assert (loaded.format, loaded.manifest.model_file) == ("mlflow", "mlflow_model")
    np.testing.assert_array_equal(loaded.predict(x), classifier.predict(x))
    assert loaded.signature is not None and loaded.signature.outputs[0].datatype == "INT64"


def test_bare_skops_file_with_untrusted_types_names_them_and_the_fix(
    tmp_path: Path, xy: Any
) -> None:
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    x, y = xy
    sio.dump(DecisionTreeClassifier(random_state=0).fit(x, y), tmp_path / "tree.skops")
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path / "tree.skops")
    message = str(info.value)
    assert "sklearn.tree._tree.Tree" in message
    # Following the advice literally makes the file load.
    import ast

    types = ast.literal_eval(message.split("pass trusted_types=", 1)[1].split(" to load_model")[0])
    loaded = load_model(tmp_path / "tree.skops", trusted_types=types)
    assert loaded.predictor.predict(x[:2]).shape == (2,)

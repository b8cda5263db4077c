"""scikit-learn models: save/load round trips in every serialization, methods, skops trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from shipyard.errors import ConfigError, InvalidInputError, ModelLoadError
from shipyard.models import MANIFEST_FILE, load_model, save_model
from shipyard.models.runtimes.sklearn import SklearnPredictor

XY = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]


@pytest.mark.parametrize(
    ("serialization", "model_file"),
    [("joblib", "model.joblib"), ("pickle", "model.pkl"), ("skops", "model.skops")],
)
def test_round_trip_each_serialization(
    tmp_path: Path, classifier: Any, xy: XY, serialization: str, model_file: str
) -> None:
    x, _ = xy
    path = save_model(
        classifier, tmp_path / "iris", serialization=serialization, input_example=x[:3]
    )
    assert (path / model_file).is_file()
    loaded = load_model(path)
    assert loaded.name == "iris"
    assert loaded.format == "sklearn"
    assert loaded.manifest.serialization == serialization
    assert isinstance(loaded.predictor, SklearnPredictor)
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))
    np.testing.assert_array_equal(loaded.input_example, x[:3])
    assert loaded.signature is not None
    assert [(s.name, s.datatype, s.shape) for s in loaded.signature.inputs] == [
        ("input-0", "FP64", [-1, 4])
    ]
    assert any(r.startswith("scikit-learn==") for r in loaded.manifest.requirements)


def test_format_alias_selects_skops(tmp_path: Path, classifier: Any) -> None:
    path = save_model(classifier, tmp_path / "m", format="sklearn-skops")
    assert load_model(path).manifest.serialization == "skops"


def test_predict_proba_method(tmp_path: Path, classifier: Any, xy: XY) -> None:
    x, _ = xy
    path = save_model(classifier, tmp_path / "m", method="predict_proba", name="probs")
    loaded = load_model(path)
    assert loaded.name == "probs"
    out = loaded.predict(x[:5])
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out, classifier.predict_proba(x[:5]))


def test_unknown_method_names_the_available_ones(tmp_path: Path, classifier: Any) -> None:
    path = save_model(classifier, tmp_path / "m", method="predict_probability")
    with pytest.raises(ModelLoadError, match="predict_proba") as info:
        load_model(path)
    assert "predict_probability" in str(info.value)


def test_name_argument_overrides_manifest(tmp_path: Path, classifier: Any) -> None:
    path = save_model(classifier, tmp_path / "m", name="from-manifest", version="3")
    loaded = load_model(path, name="override")
    assert (loaded.name, loaded.version) == ("override", "3")


def test_dataframe_fitted_pipeline_accepts_arrays_dicts_and_frames(tmp_path: Path, xy: XY) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    x, y = xy
    cols = ["a", "b", "c", "d"]
    frame = pd.DataFrame(x, columns=cols)
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(frame, y)
    loaded = load_model(save_model(model, tmp_path / "m", input_example=frame.head(2)))
    expected = model.predict(frame)
    # Warnings are errors in this suite: none of these may trip sklearn's feature-name check.
    np.testing.assert_array_equal(loaded.predictor.predict(frame), expected)
    np.testing.assert_array_equal(loaded.predictor.predict(x), expected)
    np.testing.assert_array_equal(
        loaded.predictor.predict({c: x[:, i] for i, c in enumerate(cols)}), expected
    )
    assert loaded.signature is not None
    assert loaded.signature.inputs[0].columns == cols
    assert isinstance(loaded.input_example, pd.DataFrame)
    assert list(loaded.input_example.columns) == cols


def test_frame_into_array_fitted_model_does_not_warn(
    tmp_path: Path, classifier: Any, xy: XY
) -> None:
    pd = pytest.importorskip("pandas")
    x, _ = xy
    loaded = load_model(save_model(classifier, tmp_path / "m"))
    out = loaded.predictor.predict(pd.DataFrame(x, columns=["p", "q", "r", "s"]))
    np.testing.assert_array_equal(out, classifier.predict(x))


def test_wrong_width_is_invalid_input(tmp_path: Path, classifier: Any) -> None:
    loaded = load_model(save_model(classifier, tmp_path / "m"))
    with pytest.raises(InvalidInputError, match="LogisticRegression"):
        loaded.predictor.predict(np.zeros((2, 7)))


def test_skops_refuses_types_not_listed_as_trusted(tmp_path: Path, xy: XY) -> None:
    from sklearn.tree import DecisionTreeClassifier

    x, y = xy
    model = DecisionTreeClassifier(random_state=0).fit(x, y)
    path = save_model(model, tmp_path / "m", serialization="skops")
    manifest = yaml.safe_load((path / MANIFEST_FILE).read_text())
    # skops does not trust the compiled Tree by default; save_model records that it is
    # needed, but a file cannot vouch for itself: the loader's caller decides.
    assert "sklearn.tree._tree.Tree" in manifest["trusted_types"]
    with pytest.raises(ModelLoadError, match=r"sklearn\.tree\._tree\.Tree.*trusted_types"):
        load_model(path)
    trusted = load_model(path, trusted_types=manifest["trusted_types"])
    np.testing.assert_array_equal(trusted.predictor.predict(x), model.predict(x))


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path, classifier: Any) -> None:
    path = save_model(classifier, tmp_path / "m")
    with pytest.raises(ConfigError, match="overwrite=True"):
        save_model(classifier, path)
    save_model(classifier, path, overwrite=True, method="predict_proba")
    assert load_model(path).manifest.method == "predict_proba"
    # No staging directories are left behind.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "shipyard-home") == ["m"]


def test_failed_save_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot tell how to save"):
        save_model(object(), tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m-")] == []


def test_corrupt_model_file_is_a_load_error(tmp_path: Path, classifier: Any) -> None:
    path = save_model(classifier, tmp_path / "m")
    (path / "model.joblib").write_bytes(b"not a pickle at all")
    with pytest.raises(ModelLoadError, match=r"Loading model 'm' from .*failed") as info:
        load_model(path)
    assert info.value.__cause__ is not None


def test_invalid_manifest_names_the_file_and_key(tmp_path: Path, classifier: Any) -> None:
    path = save_model(classifier, tmp_path / "m")
    manifest = yaml.safe_load((path / MANIFEST_FILE).read_text())
    manifest["formatt"] = "sklearn"
    (path / MANIFEST_FILE).write_text(yaml.safe_dump(manifest))
    with pytest.raises(ModelLoadError, match=r"shipyard\.yaml.*formatt"):
        load_model(path)


def test_unknown_format_in_manifest_lists_known_ones(tmp_path: Path, classifier: Any) -> None:
    path = save_model(classifier, tmp_path / "m")
    manifest = yaml.safe_load((path / MANIFEST_FILE).read_text())
    manifest["format"] = "caffe"
    (path / MANIFEST_FILE).write_text(yaml.safe_dump(manifest))
    with pytest.raises(ModelLoadError, match=r"'caffe'.*sklearn, xgboost"):
        load_model(path)


def test_method_can_be_chosen_at_load_time(tmp_path: Path, classifier: Any, xy: Any) -> None:
    x, _ = xy
    path = save_model(classifier, tmp_path / "m")
    loaded = load_model(path, method="predict_proba")
    assert loaded.manifest.method == "predict_proba"
    np.testing.assert_allclose(loaded.predict(x[:2]), classifier.predict_proba(x[:2]))


@pytest.mark.parametrize(
    ("method", "expected"),
    [(None, ("output-0", "INT64", [-1])), ("predict_proba", ("output-0", "FP64", [-1, 3]))],
)
def test_saving_with_an_example_records_the_outputs(
    tmp_path: Path, classifier: Any, xy: Any, method: str | None, expected: Any
) -> None:
    x, _ = xy
    path = save_model(classifier, tmp_path / "m", input_example=x[:2], method=method)
    sig = load_model(path).signature
    assert sig is not None
    assert [(s.name, s.datatype, s.shape) for s in sig.outputs] == [expected]


def test_an_example_the_model_cannot_predict_is_refused(tmp_path: Path, classifier: Any) -> None:
    with pytest.raises(ConfigError, match=r"does not predict its own input example.*features"):
        save_model(classifier, tmp_path / "m", input_example=np.zeros((2, 7)))
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m-")] == []


def test_concurrent_predictions_from_threads(tmp_path: Path, classifier: Any, xy: Any) -> None:
    # The model server calls predict() from worker threads; results must not mix.
    from concurrent.futures import ThreadPoolExecutor

    x, _ = xy
    loaded = load_model(save_model(classifier, tmp_path / "m", method="predict_proba"))
    chunks = [x[i : i + 7] for i in range(0, len(x), 7)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(loaded.predictor.predict, chunks * 5))
    for chunk, got in zip(chunks * 5, results, strict=True):
        np.testing.assert_allclose(got, classifier.predict_proba(chunk))

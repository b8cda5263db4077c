"""XGBoost, LightGBM, ONNX and TorchScript runtimes, and the advice when one is missing."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.errors import InvalidInputError, MissingDependencyError, ModelLoadError
from shipyard.models import load_model, save_model


def _binary(xy: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x, y = xy
    return x, (y == 1).astype(int)


def test_xgboost_booster_round_trip_and_bare_file(tmp_path: Path, xy: Any) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = _binary(xy)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=5,
    )
    expected = booster.predict(xgb.DMatrix(x))
    path = save_model(booster, tmp_path / "xgb", input_example=x[:2])
    loaded = load_model(path)
    assert (loaded.format, loaded.manifest.model_file) == ("xgboost", "model.json")
    np.testing.assert_allclose(loaded.predictor.predict(x), expected, rtol=1e-6)
    # A bare XGBoost JSON file is recognised by its content.
    bare = load_model(path / "model.json")
    np.testing.assert_allclose(bare.predictor.predict({"input-0": x}), expected, rtol=1e-6)
    # Also in the binary UBJSON format.
    booster.save_model(str(tmp_path / "b.ubj"))
    np.testing.assert_allclose(load_model(tmp_path / "b.ubj").predictor.predict(x), expected)
    with pytest.raises(InvalidInputError, match="XGBoost"):
        loaded.predictor.predict(np.zeros((2, 9)))


def test_xgboost_sklearn_wrapper_goes_through_the_sklearn_runtime(tmp_path: Path, xy: Any) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = xy
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(x, y)
    loaded = load_model(save_model(model, tmp_path / "m", method="predict_proba"))
    assert loaded.format == "sklearn"
    np.testing.assert_allclose(loaded.predictor.predict(x), model.predict_proba(x), rtol=1e-6)


def test_lightgbm_booster_round_trip_and_bare_file(tmp_path: Path, xy: Any) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = _binary(xy)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 4,
            "verbose": -1,
            "num_threads": 1,
            "min_data_in_leaf": 5,
        },
        lgb.Dataset(x, label=y),
        num_boost_round=5,
    )
    expected = booster.predict(x)
    path = save_model(booster, tmp_path / "lgb")
    loaded = load_model(path)
    assert (loaded.format, loaded.manifest.model_file) == ("lightgbm", "model.txt")
    np.testing.assert_allclose(loaded.predictor.predict(x), expected)
    bare = load_model(path / "model.txt")
    assert bare.format == "lightgbm"
    np.testing.assert_allclose(bare.predictor.predict(x[:1]), expected[:1])
    with pytest.raises(InvalidInputError, match="LightGBM"):
        loaded.predictor.predict(np.zeros((2, 9)))


def _onnx_classifier(classifier: Any, n_features: int, zipmap: bool) -> Any:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    return skl2onnx.convert_sklearn(
        classifier,
        initial_types=[("float_input", FloatTensorType([None, n_features]))],
        options={id(classifier): {"zipmap": zipmap}},
        target_opset=17,
    )


def test_onnx_round_trip_outputs_and_method(tmp_path: Path, classifier: Any, xy: Any) -> None:
    pytest.importorskip("onnxruntime")
    x, _ = xy
    proto = _onnx_classifier(classifier, 4, zipmap=False)
    path = save_model(proto, tmp_path / "onnx", input_example=x[:2].astype(np.float32))
    loaded = load_model(path)
    assert loaded.format == "onnx"
    # float64 input is cast to the session's float32; two outputs come back as a dict.
    out = loaded.predictor.predict(x)
    assert set(out) == {"label", "probabilities"}
    np.testing.assert_array_equal(out["label"], classifier.predict(x))
    np.testing.assert_allclose(out["probabilities"], classifier.predict_proba(x), atol=1e-5)
    # method picks one output; the session's input name is used whatever the dict key.
    only = load_model(save_model(proto.SerializeToString(), tmp_path / "p", method="probabilities"))
    np.testing.assert_allclose(
        only.predictor.predict({"input-0": x}), classifier.predict_proba(x), atol=1e-5
    )
    with pytest.raises(ModelLoadError, match=r"no output 'proba'.*label, probabilities"):
        load_model(save_model(proto, tmp_path / "q", method="proba"))


def test_onnx_zipmap_output_becomes_an_array(tmp_path: Path, classifier: Any, xy: Any) -> None:
    pytest.importorskip("onnxruntime")
    x, _ = xy
    proto = _onnx_classifier(classifier, 4, zipmap=True)
    (tmp_path / "clf.onnx").write_bytes(proto.SerializeToString())
    loaded = load_model(tmp_path / "clf.onnx")
    out = loaded.predictor.predict(x[:5])
    np.testing.assert_allclose(
        out["output_probability"], classifier.predict_proba(x[:5]), atol=1e-5
    )
    with pytest.raises(InvalidInputError, match="onnxruntime rejected"):
        loaded.predictor.predict(np.zeros((2, 9)))


def test_onnx_multi_input_model_takes_columns_or_names(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 1])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 1])
    out = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "add", [a, b], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    loaded = load_model(save_model(model, tmp_path / "add"))
    by_name = loaded.predictor.predict(
        {"a": np.array([[1.0], [2.0]]), "b": np.array([[10.0], [20.0]])}
    )
    np.testing.assert_allclose(by_name, [[11.0], [22.0]])
    by_column = loaded.predictor.predict(np.array([[1.0, 10.0], [2.0, 20.0]]))
    np.testing.assert_allclose(by_column, [[11.0], [22.0]])
    with pytest.raises(InvalidInputError, match="takes inputs 'a', 'b'"):
        loaded.predictor.predict({"a": np.zeros((1, 1)), "c": np.zeros((1, 1))})


def test_missing_onnxruntime_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")  # never parsed: the import fails first
    # A None entry in sys.modules makes `import onnxruntime` raise ImportError.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'shipyard\[onnx\]'") as info:
        load_model(tmp_path / "model.onnx")
    assert info.value.extra == "onnx"
    assert isinstance(info.value.__cause__, ImportError)


@pytest.mark.parametrize(
    ("module", "filename", "extra"),
    [
        ("xgboost", "model.ubj", "xgboost"),
        ("lightgbm", "model.txt", "lightgbm"),
        ("torch", "model.pt", "torch"),
    ],
)
def test_missing_framework_names_its_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, filename: str, extra: str
) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / filename).write_bytes(b"tree\nversion=v4\n")
    (model_dir / "shipyard.yaml").write_text(
        f"format: {'torchscript' if extra == 'torch' else extra}\nmodel_file: {filename}\n"
    )
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=rf"pip install 'shipyard\[{extra}\]'"):
        load_model(model_dir)


def test_torchscript_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class TwoHeads(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, x: Any) -> Any:
            y = self.linear(x)
            return y, y.sum(dim=1)

    with warnings.catch_warnings():
        # torch >= 2.10 deprecates TorchScript; users with TorchScript files still deploy them.
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.trace(TwoHeads(), torch.zeros(2, 3))
    x = np.random.default_rng(0).normal(size=(4, 3))
    path = save_model(module, tmp_path / "ts", input_example=x)
    loaded = load_model(path)
    out = loaded.predictor.predict(x)
    with torch.no_grad():
        want = module(torch.from_numpy(x.astype(np.float32)))
    np.testing.assert_allclose(out["output-0"], want[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(out["output-1"], want[1].numpy(), rtol=1e-6)
    with pytest.raises(ModelLoadError, match="not TorchScript"):
        torch.save(TwoHeads().state_dict(), tmp_path / "weights.pt")
        load_model(tmp_path / "weights.pt")


def test_torch_export_round_trip_with_dynamic_batch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Affine(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, x: Any) -> Any:
            return self.linear(x)

    module = Affine().eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(module, (torch.zeros(2, 3),), dynamic_shapes={"x": {0: batch}})
    x = np.random.default_rng(1).normal(size=(5, 3))
    loaded = load_model(save_model(program, tmp_path / "exported", input_example=x))
    assert (loaded.format, loaded.manifest.model_file) == ("torch-export", "model.pt2")
    with torch.no_grad():
        want = module(torch.from_numpy(x.astype(np.float32))).numpy()
    np.testing.assert_allclose(loaded.predictor.predict(x), want, rtol=1e-6)
    assert loaded.signature is not None
    assert [(s.name, s.datatype, s.shape) for s in loaded.signature.outputs] == [
        ("output-0", "FP32", [-1, 2])
    ]
    # A program saved under a TorchScript-like name is still recognised by its content.
    torch.export.save(program, str(tmp_path / "renamed.pt"))
    assert load_model(tmp_path / "renamed.pt").format == "torch-export"


def test_onnx_fixed_batch_dimension_turns_batching_off(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def model(first_dim: int | None) -> Any:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [first_dim, 2])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [first_dim, 2])
        graph = helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "neg", [x], [y])
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        proto.ir_version = 8
        return proto

    dynamic = load_model(save_model(model(None), tmp_path / "dynamic"))
    fixed = load_model(save_model(model(1), tmp_path / "fixed"))
    assert dynamic.predictor.supports_batching is True
    assert fixed.predictor.supports_batching is False
    np.testing.assert_allclose(fixed.predictor.predict(np.array([[1.0, -2.0]])), [[-1.0, 2.0]])


def test_packaging_without_the_framework_records_inputs_only(
    tmp_path: Path, classifier: Any, xy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, _ = xy
    proto = _onnx_classifier(classifier, 4, zipmap=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    path = save_model(proto, tmp_path / "m", input_example=x[:2].astype(np.float32))
    monkeypatch.delitem(sys.modules, "onnxruntime")
    loaded = load_model(path)
    assert loaded.signature is not None
    assert [s.datatype for s in loaded.signature.inputs] == ["FP32"]
    assert loaded.signature.outputs == []
    np.testing.assert_array_equal(loaded.predictor.predict(x)["label"], classifier.predict(x))


def test_lightgbm_predictions_from_many_threads_agree(tmp_path: Path, xy: Any) -> None:
    lgb = pytest.importorskip("lightgbm")
    from concurrent.futures import ThreadPoolExecutor

    x, y = _binary(xy)
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=5)
    loaded = load_model(save_model(booster, tmp_path / "lgb"))
    chunks = [x[i : i + 3] for i in range(0, len(x), 3)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(loaded.predictor.predict, chunks * 3))
    for chunk, got in zip(chunks * 3, results, strict=True):
        np.testing.assert_allclose(got, booster.predict(chunk))

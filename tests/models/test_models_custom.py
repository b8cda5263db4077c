"""Custom predictors: their source travels in the model directory and loads anywhere."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from shipyard.errors import ConfigError, ModelLoadError
from shipyard.models import MANIFEST_FILE, load_model, save_model

RunPython = Callable[[str, Path], str]

# A predictor with pre- and postprocessing around a scikit-learn model, plus a helper
# transformer class defined in the same module (pickled inside the model).
PREDICTOR_SOURCE = textwrap.dedent(
    '''
    """A user's predictor module, imported by the loader from the model directory."""
    import numpy as np

    from shipyard.models.runtimes.sklearn import SklearnPredictor


    class Doubler:
        def transform(self, x):
            return np.asarray(x) * 2.0


    class LabelledClassifier(SklearnPredictor):
        labels = ["setosa", "versicolor", "virginica"]

        def preprocess(self, request):
            # Clients send centimetres as a dict of named columns.
            return np.column_stack([np.asarray(request[k], dtype=float) for k in "abcd"])

        def postprocess(self, outputs):
            return {"label": [self.labels[int(i)] for i in outputs]}


    class RuleBased:
        """No model bytes at all: a threshold read from a file it ships itself."""

        supports_batching = True

        def load(self, model_dir):
            with open(f"{model_dir}/threshold.txt") as fh:
                self.threshold = float(fh.read())

        def predict(self, inputs):
            return (np.asarray(inputs)[:, 0] > self.threshold).astype(np.int64)


    class AsyncHooks:
        async def load(self, model_dir):
            self.offset = 10

        async def predict(self, inputs):
            return np.asarray(inputs) + self.offset


    class Broken:
        def load(self, model_dir):
            raise RuntimeError("weights are missing")

        def predict(self, inputs):
            return inputs
    '''
)


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[Any]:
    """The predictor module, importable from a directory that only this test puts on sys.path."""
    src_dir = tmp_path / "usercode"
    src_dir.mkdir()
    (src_dir / "my_predictors.py").write_text(PREDICTOR_SOURCE)
    sys.path.insert(0, str(src_dir))
    try:
        import my_predictors

        yield my_predictors
    finally:
        sys.path.remove(str(src_dir))
        sys.modules.pop("my_predictors", None)


def test_custom_predictor_loads_in_a_fresh_process_without_the_source(
    tmp_path: Path, classifier: Any, xy: Any, user_module: Any, run_python: RunPython
) -> None:
    x, _ = xy
    path = save_model(classifier, tmp_path / "labelled", predictor=user_module.LabelledClassifier)
    manifest = yaml.safe_load((path / MANIFEST_FILE).read_text())
    assert manifest["predictor"] == "my_predictors:LabelledClassifier"
    assert manifest["predictor_source"] == "code/my_predictors.py"
    # The author's copy is gone: only the one inside the model directory remains.
    shutil.rmtree(tmp_path / "usercode")
    rows = {k: x[:6, i].tolist() for i, k in enumerate("abcd")}
    code = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from shipyard.models import load_model
        assert "my_predictors" not in sys.modules
        m = load_model({str(path)!r})
        out = m.predict({{k: np.asarray(v) for k, v in json.loads({json.dumps(rows)!r}).items()}})
        print(json.dumps({{"out": out, "cls": type(m.predictor).__name__}}))
        """
    )
    result = json.loads(run_python(code, tmp_path))
    names = ["setosa", "versicolor", "virginica"]
    assert result == {
        "cls": "LabelledClassifier",
        "out": {"label": [names[int(i)] for i in classifier.predict(x[:6])]},
    }


def test_pickled_helper_class_resolves_from_the_carried_module(
    tmp_path: Path, user_module: Any, run_python: RunPython
) -> None:
    # The model object itself references a class of the predictor module: the loader
    # imports the carried module under its own name so unpickling finds it.
    doubler = user_module.Doubler()
    (tmp_path / "threshold.txt").write_text("0.5")
    path = save_model(
        str(tmp_path / "threshold.txt"),
        tmp_path / "rules",
        predictor="my_predictors:RuleBased",
        format="custom",
    )
    import pickle

    (path / "doubler.pkl").write_bytes(pickle.dumps(doubler))
    shutil.rmtree(tmp_path / "usercode")
    code = textwrap.dedent(
        f"""
        import pickle
        import numpy as np
        from shipyard.models import load_model
        m = load_model({str(path)!r})
        d = pickle.loads(open({str(path / "doubler.pkl")!r}, "rb").read())
        print(m.predict(d.transform(np.array([[0.1], [0.3], [0.9]]))).tolist())
        """
    )
    assert run_python(code, tmp_path).strip() == "[0, 1, 1]"


def test_rule_based_predictor_without_model_bytes(tmp_path: Path, user_module: Any) -> None:
    (tmp_path / "threshold.txt").write_text("2.0")
    path = save_model(
        tmp_path / "threshold.txt",
        tmp_path / "rules",
        predictor=user_module.RuleBased,
        format="custom",
        input_example=np.array([[1.0], [3.0]]),
    )
    loaded = load_model(path)
    assert loaded.format == "custom"
    assert loaded.manifest.requirements == []
    np.testing.assert_array_equal(loaded.predict(np.array([[1.0], [2.5], [9.0]])), [0, 1, 1])


def test_model_none_with_predictor(tmp_path: Path, user_module: Any) -> None:
    path = save_model(None, tmp_path / "async", predictor=user_module.AsyncHooks)
    loaded = load_model(path)
    assert loaded.manifest.model_file is None
    np.testing.assert_array_equal(loaded.predict(np.array([1, 2])), [11, 12])


def test_async_hooks_work_inside_a_running_event_loop(tmp_path: Path, user_module: Any) -> None:
    path = save_model(None, tmp_path / "async", predictor=user_module.AsyncHooks)

    async def inside_a_loop() -> Any:
        # load() is async and a loop already runs here: it must get a loop of its own.
        return load_model(path).predict(np.array([5]))

    np.testing.assert_array_equal(asyncio.run(inside_a_loop()), [15])


def test_failing_load_is_a_model_load_error_with_its_cause(
    tmp_path: Path, user_module: Any
) -> None:
    path = save_model(None, tmp_path / "broken", predictor=user_module.Broken)
    with pytest.raises(ModelLoadError, match="weights are missing") as info:
        load_model(path)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_missing_predictor_source_is_reported(tmp_path: Path, user_module: Any) -> None:
    path = save_model(None, tmp_path / "m", predictor=user_module.RuleBased)
    (path / "code" / "my_predictors.py").unlink()
    with pytest.raises(ModelLoadError, match=r"predictor source 'code/my_predictors\.py'"):
        load_model(path)


def test_predictor_source_with_import_error_is_reported(tmp_path: Path, user_module: Any) -> None:
    path = save_model(None, tmp_path / "m", predictor=user_module.RuleBased)
    (path / "code" / "my_predictors.py").write_text("import not_a_real_package_xyz\n")
    with pytest.raises(ModelLoadError, match=r"not_a_real_package_xyz.*absolute imports"):
        load_model(path)


def test_class_defined_in_a_function_is_refused(tmp_path: Path) -> None:
    class Local:
        def predict(self, inputs: Any) -> Any:
            return inputs

    with pytest.raises(ConfigError, match="inside a function"):
        save_model(None, tmp_path / "m", predictor=Local)
    assert not (tmp_path / "m").exists()


def test_builtin_runtime_as_predictor_is_referenced_not_copied(
    tmp_path: Path, classifier: Any, xy: Any
) -> None:
    x, _ = xy
    path = save_model(
        classifier,
        tmp_path / "m",
        predictor="shipyard.models.runtimes.sklearn:SklearnPredictor",
    )
    manifest = yaml.safe_load((path / MANIFEST_FILE).read_text())
    assert "predictor_source" not in manifest
    assert not (path / "code").exists()
    np.testing.assert_array_equal(load_model(path).predict(x), classifier.predict(x))


def test_unimportable_predictor_reference_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no_such_module"):
        save_model(None, tmp_path / "m", predictor="no_such_module:Thing")
    with pytest.raises(ConfigError, match="neither"):
        save_model(None, tmp_path / "m")


def test_code_paths_travel_with_the_model(tmp_path: Path, run_python: RunPython) -> None:
    src = tmp_path / "project"
    (src / "featurelib").mkdir(parents=True)
    (src / "featurelib" / "__init__.py").write_text("from .scale import scale\n")
    (src / "featurelib" / "scale.py").write_text("def scale(x):\n    return x * 100\n")
    (src / "units.py").write_text("SUFFIX = ' cm'\n")
    (src / "pred_with_helpers.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            import featurelib
            import units

            class Scaled:
                def load(self, model_dir):
                    pass

                def predict(self, inputs):
                    return featurelib.scale(np.asarray(inputs))

                def postprocess(self, outputs):
                    return [f"{v:g}{units.SUFFIX}" for v in outputs]
            """
        )
    )
    sys.path.insert(0, str(src))
    try:
        path = save_model(
            None,
            tmp_path / "scaled",
            predictor="pred_with_helpers:Scaled",
            code_paths=[src / "featurelib", src / "units.py"],
            input_example=np.array([1.5]),
        )
    finally:
        sys.path.remove(str(src))
        for mod in ("pred_with_helpers", "featurelib", "featurelib.scale", "units"):
            sys.modules.pop(mod, None)
    shutil.rmtree(src)
    manifest = yaml.safe_load((path / MANIFEST_FILE).read_text())
    assert manifest["code_paths"] == ["code/featurelib", "code/units.py"]
    # postprocess returns strings: the recorded output is BYTES.
    assert manifest["signature"]["outputs"] == [
        {"name": "output-0", "datatype": "BYTES", "shape": [-1], "allow_nan": True}
    ]
    code = (
        "import numpy as np\n"
        "from shipyard.models import load_model\n"
        f"print(load_model({str(path)!r}).predict(np.array([1.0, 2.5])))\n"
    )
    assert run_python(code, tmp_path).strip() == "['100 cm', '250 cm']"


def test_model_overwritten_in_place_runs_its_new_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Continuous deployment may write version 2 to the same path in the same process,
    # while the module the loader imported for version 1 is still in sys.modules.
    # (The author's own import must not reuse v1 bytecode of the same size and mtime.)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    src = tmp_path / "src"
    src.mkdir()
    versions = {}
    for version, factor in (("v1", 2), ("v2", 3)):
        (src / "inplace_pred.py").write_text(
            "import numpy as np\n"
            "class Times:\n"
            f"    def predict(self, inputs):\n        return np.asarray(inputs) * {factor}\n"
        )
        loaders_copy = sys.modules.pop("inplace_pred", None)
        sys.path.insert(0, str(src))
        try:
            import inplace_pred  # the author's module, fresh

            save_model(None, tmp_path / "model", predictor=inplace_pred.Times, overwrite=True)
        finally:
            sys.path.remove(str(src))
            sys.modules.pop("inplace_pred", None)
            if loaders_copy is not None:
                sys.modules["inplace_pred"] = loaders_copy
        versions[version] = load_model(tmp_path / "model").predict(np.array([1, 2]))
        assert not (tmp_path / "model" / "code" / "__pycache__").exists()
    monkeypatch.delitem(sys.modules, "inplace_pred", raising=False)
    np.testing.assert_array_equal(versions["v1"], [2, 4])
    np.testing.assert_array_equal(versions["v2"], [3, 6])

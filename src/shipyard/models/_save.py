"""``save_model``: write a self-contained model directory (model bytes + ``shipyard.yaml``)."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError, MissingDependencyError, ShipyardError
from shipyard.models._code import carry_code_paths, carry_predictor, resolve_predictor
from shipyard.models._detect import MLMODEL_FILE, detect_file_format
from shipyard.models._example import write_input_example
from shipyard.models._signature import infer_output_specs, infer_signature
from shipyard.models.manifest import ModelManifest, Signature, write_manifest
from shipyard.models.runtimes.custom import SaveDuringImportError, importing_predictor_source

__all__ = ["FORMATS", "save_model"]

#: Values accepted by ``save_model(format=...)``.
FORMATS = (
    "sklearn",
    "sklearn-joblib",
    "sklearn-pickle",
    "sklearn-skops",
    "xgboost",
    "lightgbm",
    "onnx",
    "torchscript",
    "torch-export",
    "mlflow",
    "custom",
)
_DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    # Per format, the packages a server needs; each entry lists alternative dist names.
    "sklearn": (("scikit-learn",),),
    "xgboost": (("xgboost", "xgboost-cpu"),),
    "lightgbm": (("lightgbm",),),
    "onnx": (("onnxruntime",),),
    "torchscript": (("torch",),),
    "torch-export": (("torch",),),
    "mlflow": (("mlflow",),),
}
_SERIALIZATION_DISTS = {"joblib": ("joblib",), "skops": ("skops",)}


def _pins(fmt: str, serialization: str | None) -> list[str]:
    groups = list(_DISTRIBUTIONS.get(fmt, ()))
    if serialization in _SERIALIZATION_DISTS:
        groups.append(_SERIALIZATION_DISTS[serialization])
    pins: list[str] = []
    for names in groups:
        for dist in names:
            try:
                pins.append(f"{dist}=={metadata.version(dist)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return pins


def _requirements(model: Any, fmt: str, serialization: str | None) -> list[str]:
    """The format's packages, and for a pickled object every package its classes are from."""
    pins = _pins(fmt, serialization)
    if fmt != "sklearn" or model is None:
        return pins
    from shipyard.models._requirements import pickled_file_requirements, pickled_requirements

    if not isinstance(model, (str, os.PathLike)):
        found = pickled_requirements(model)
    elif serialization in ("pickle", "joblib", "cloudpickle") and Path(model).is_file():
        found = pickled_file_requirements(model)  # the user's own .pkl/.joblib file
    else:
        found = []
    have = {p.split("==")[0].lower() for p in pins}
    return pins + [p for p in found if p.split("==")[0].lower() not in have]


def _split_format(fmt: str | None, serialization: str | None) -> tuple[str | None, str | None]:
    if fmt is None:
        return None, serialization
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown format {fmt!r}; use one of: {', '.join(FORMATS)}.")
    if fmt.startswith("sklearn-"):
        return "sklearn", fmt.removeprefix("sklearn-")
    return fmt, serialization


def _format_of_object(model: Any) -> str:
    cls = type(model)
    root = cls.__module__.split(".")[0]
    if isinstance(model, (bytes, bytearray)) or (root == "onnx" and cls.__name__ == "ModelProto"):
        return "onnx"
    if root == "xgboost" and cls.__name__ == "Booster":
        return "xgboost"
    if root == "lightgbm" and cls.__name__ == "Booster":
        return "lightgbm"
    if root == "torch":
        import torch  # already imported: the object is a torch object

        if isinstance(model, torch.jit.ScriptModule):
            return "torchscript"
        if isinstance(model, torch.export.ExportedProgram):
            return "torch-export"
        raise ConfigError(
            f"Cannot save a plain {cls.__name__} (torch.nn.Module): export it with "
            "torch.export.export(model, (example,), dynamic_shapes=...) or convert it with "
            "torch.jit.script(model), or write a custom predictor that builds the module "
            "and loads its state_dict."
        )
    if callable(getattr(model, "predict", None)):
        # scikit-learn estimators and pipelines, and the sklearn-API wrappers of XGBoost,
        # LightGBM, CatBoost: all picklable objects with predict().
        return "sklearn"
    raise ConfigError(
        f"Cannot tell how to save a {cls.__module__}.{cls.__qualname__}: it is not a "
        "scikit-learn estimator, XGBoost/LightGBM Booster, TorchScript module or ONNX model. "
        "Pass format=..., or model=None with a custom predictor that loads its own files."
    )


def _write_model(
    model: Any, staging: Path, fmt: str | None, serialization: str | None
) -> tuple[str, str | None, str | None, list[str]]:
    """Write the model bytes; returns (format, model_file, serialization, trusted_types)."""
    if isinstance(model, (str, os.PathLike)):
        return _copy_model_path(Path(model), staging, fmt)
    fmt = fmt or _format_of_object(model)
    if fmt == "sklearn":
        from shipyard.models.runtimes.sklearn import save_sklearn

        name, ser, trusted = save_sklearn(model, staging, serialization)
        return fmt, name, ser, trusted
    if fmt in ("xgboost", "lightgbm", "onnx", "torchscript", "torch-export"):
        module = importlib.import_module(f"shipyard.models.runtimes.{fmt.replace('-', '_')}")
        name = module.save(model, staging)
        return fmt, name, None, []
    raise ConfigError(
        f"format={fmt!r} needs the model as a path to an existing file or directory "
        f"(got a {type(model).__name__})."
    )


def _copy_model_path(
    src: Path, staging: Path, fmt: str | None
) -> tuple[str, str | None, str | None, list[str]]:
    if src.is_dir():
        if not (src / MLMODEL_FILE).is_file():
            raise ConfigError(
                f"{src} is a directory but not an MLflow model (no {MLMODEL_FILE}); pass a "
                "model file or a model object."
            )
        shutil.copytree(src, staging / "mlflow_model")
        return "mlflow", "mlflow_model", None, []
    if not src.is_file():
        raise ConfigError(f"No model file at {src}.")
    found = detect_file_format(src)
    if found is None and fmt is None:
        raise ConfigError(
            f"Cannot tell the format of {src}; pass format=... (one of {', '.join(FORMATS)})."
        )
    detected, ser = found if found is not None else (fmt, None)
    shutil.copy2(src, staging / src.name)
    return fmt or detected or "custom", src.name, ser, []


def _run_example(staging: Path, manifest: ModelManifest, example: Any) -> list[Any]:
    """Load the staged directory, predict the example, and describe the outputs."""
    from shipyard.models._load import build_predictor, call_hook, run_hooks

    # Loading may put the staging code/ folder on sys.path; it is renamed right after.
    saved_path = list(sys.path)
    try:
        predictor = build_predictor(staging, manifest)
        if getattr(predictor, "load", None) is not None:
            call_hook(predictor.load, staging)
        outputs = run_hooks(predictor, example)
    except SaveDuringImportError:
        raise
    except MissingDependencyError:
        # The serving framework need not be installed where the model is packaged (an
        # ONNX file converted elsewhere): the inputs are still recorded, outputs are not.
        return []
    except ShipyardError as err:
        raise ConfigError(
            f"The saved model does not predict its own input example: {err}. Fix the "
            "example (it must look like a request) or the model/predictor."
        ) from err
    except Exception as err:
        raise ConfigError(
            f"The saved model does not predict its own input example: "
            f"{type(err).__name__}: {err}. Fix the example (it must look like a request) "
            "or the model/predictor."
        ) from err
    finally:
        sys.path[:] = saved_path
    return infer_output_specs(outputs)


def _prebuild_trees(model: Any, method: str | None, model_file: Path) -> None:
    """Compile a tree ensemble's evaluator into the model's cache now, not at first load
    (a no-op for other models; a model the evaluator cannot take is said so in the log)."""
    from shipyard.models.trees import attach

    attach(model, method or "predict", model_file)


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    predictor: type[Any] | str | None = None,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any | None = None,
    requirements: Sequence[str] | None = None,
    name: str | None = None,
    format: str | None = None,
    serialization: str | None = None,
    version: str | None = None,
    method: str | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model directory at ``path`` and return it.

    ``model`` is a model object (scikit-learn estimator, XGBoost/LightGBM Booster,
    TorchScript module, ONNX ``ModelProto`` or bytes), a path to a model file or MLflow
    directory to copy in, or ``None`` for a custom ``predictor`` that loads its own files.
    ``predictor`` (a class or ``"module:Class"``) has its module's source copied into the
    directory, so the model loads in another process without the author's code on
    ``sys.path``; ``code_paths`` (modules or packages it imports) are copied beside it.

    With an ``input_example``, the saved directory is loaded and the example run through
    it before the directory appears: a model that cannot predict its own example is an
    error here, not in production, and the outputs fill in the signature. The input
    signature is inferred from the example when not given. ``method`` picks the
    estimator method (``predict_proba``) or the ONNX output to return. The directory
    appears complete or not at all; ``overwrite=True`` replaces an existing one.
    """
    importing = importing_predictor_source()
    if importing is not None:
        # The predictor's module is being imported (to run the example, or to load the
        # model) and its top level calls save_model: saving again would copy and import
        # the module again, without end.
        raise SaveDuringImportError(
            f"{importing.name} calls save_model when it is imported (save_model imports "
            "the predictor's module to check it); put the save_model call under "
            '`if __name__ == "__main__":` or define the predictor class in its own module.'
        )
    target = Path(path).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise ConfigError(
            f"{target} already exists and is not empty; pass overwrite=True to replace it, "
            "or choose another path."
        )
    fmt, ser = _split_format(format, serialization)
    if model is None and predictor is None:
        raise ConfigError("save_model needs a model, a predictor, or both; got neither.")
    if signature is not None and not isinstance(signature, Signature):
        signature = Signature.model_validate(dict(signature))
    if signature is None and input_example is not None:
        signature = infer_signature(input_example)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model_file: str | None = None
        trusted: list[str] = []
        if model is not None:
            fmt, model_file, ser, trusted = _write_model(model, staging, fmt, ser)
            if (
                model_file is not None
                and predictor is None
                and not isinstance(model, (str, os.PathLike))
            ):
                _prebuild_trees(model, method, staging / model_file)
        ref: str | None = None
        source: str | None = None
        if predictor is not None:
            ref, source = carry_predictor(resolve_predictor(predictor), staging)
        carried = carry_code_paths(code_paths, staging) if code_paths else []
        manifest = ModelManifest(
            format=fmt or "custom",
            model_file=model_file,
            serialization=ser,
            predictor=ref,
            predictor_source=source,
            signature=signature,
            input_example=(
                write_input_example(staging, input_example) if input_example is not None else None
            ),
            requirements=(
                list(requirements)
                if requirements is not None
                else _requirements(model, fmt or "", ser)
            ),
            name=name,
            version=version,
            method=method,
            trusted_types=trusted,
            code_paths=carried,
        )
        write_manifest(staging, manifest)
        if input_example is not None and not (signature and signature.outputs):
            outputs = _run_example(staging, manifest, input_example)
            if signature is not None and outputs:
                manifest.signature = signature.model_copy(update={"outputs": outputs})
                write_manifest(staging, manifest)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target.resolve()

"""Format detection: what runtime loads a directory or file that has no ``shipyard.yaml``."""

from __future__ import annotations

import zipfile
from pathlib import Path

from shipyard.errors import ModelLoadError
from shipyard.models.manifest import MANIFEST_FILE, ModelManifest, read_manifest

__all__ = ["detect_file_format", "detect_model"]

MLMODEL_FILE = "MLmodel"

_BY_SUFFIX: dict[str, tuple[str, str | None]] = {
    ".joblib": ("sklearn", "joblib"),
    ".pkl": ("sklearn", "pickle"),
    ".pickle": ("sklearn", "pickle"),
    ".skops": ("sklearn", "skops"),
    ".onnx": ("onnx", None),
    ".ubj": ("xgboost", None),
    ".bst": ("xgboost", None),
    ".pt": ("torchscript", None),
    ".pth": ("torchscript", None),
    ".torchscript": ("torchscript", None),
    ".pt2": ("torch-export", None),
}
_SNIFF_BYTES = 4096


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(_SNIFF_BYTES)


def _torch_archive_kind(path: Path) -> str | None:
    # torch.jit.save writes a zip holding the module's code; torch.export.save a zip with
    # an archive_format record; torch.save of a state_dict is a zip with neither, and
    # cannot be served without the model's Python class.
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    if any("/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/archive_format") for n in names):
        return "torch-export"
    return None


def detect_file_format(path: Path) -> tuple[str, str | None] | None:
    """(format, serialization) for a bare model file, or ``None`` if it is not one we know."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        # XGBoost's JSON model; any other JSON (an input example) is not a model.
        return ("xgboost", None) if b'"learner"' in _head(path) else None
    if suffix == ".txt":
        head = _head(path)
        return ("lightgbm", None) if head.startswith(b"tree\n") or b"\nversion=v" in head else None
    found = _BY_SUFFIX.get(suffix)
    if found and found[0] == "torchscript":
        kind = _torch_archive_kind(path)
        if kind is not None:
            return kind, None
        raise ModelLoadError(
            f"{path} is a PyTorch file but not TorchScript, so it cannot be loaded without "
            "the model's Python class. Save it with torch.export.save(torch.export.export("
            "model, args)) or torch.jit.save(torch.jit.script(model)), or serve it with a "
            "custom predictor."
        )
    return found


def _listing(directory: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return shown or "nothing"


def detect_model(path: Path) -> tuple[Path, ModelManifest]:
    """Return (model directory, manifest) for a local file or directory.

    A directory's ``shipyard.yaml`` wins; else an MLflow ``MLmodel`` file; else the one
    model file it holds. A file is detected by its suffix (and, for .json/.txt, content).
    """
    if path.is_file():
        if path.name == MANIFEST_FILE:
            return detect_model(path.parent)
        if path.name == MLMODEL_FILE:
            return path.parent, ModelManifest(format="mlflow")
        beside = read_manifest(path.parent)
        if beside is not None and beside.model_file == path.name:
            # The URI names the model file of a model directory: same model, same manifest.
            return path.parent, beside
        found = detect_file_format(path)
        if found is None:
            raise ModelLoadError(
                f"Cannot tell the format of {path}. Known model files: "
                f"{', '.join(sorted(_BY_SUFFIX))}, XGBoost .json, LightGBM .txt. Rename "
                "it, or save it with shipyard.save_model(..., format=...)."
            )
        fmt, ser = found
        return path.parent, ModelManifest(format=fmt, model_file=path.name, serialization=ser)
    if not path.is_dir():
        raise ModelLoadError(f"{path} is neither a file nor a directory.")
    manifest = read_manifest(path)
    if manifest is not None:
        return path, manifest
    if (path / MLMODEL_FILE).is_file():
        return path, ModelManifest(format="mlflow")
    candidates: list[tuple[Path, tuple[str, str | None]]] = []
    for child in sorted(path.iterdir()):
        if child.is_file():
            found = detect_file_format(child)
            if found is not None:
                candidates.append((child, found))
    if len(candidates) == 1:
        child, (fmt, ser) = candidates[0]
        return path, ModelManifest(format=fmt, model_file=child.name, serialization=ser)
    if not candidates:
        raise ModelLoadError(
            f"No model found in {path} (it holds: {_listing(path)}). Expected a "
            f"{MANIFEST_FILE} from save_model, an MLflow {MLMODEL_FILE}, or one model file "
            "such as model.joblib or model.onnx."
        )
    raise ModelLoadError(
        f"{path} holds several model files ({', '.join(c.name for c, _ in candidates)}); "
        f"point the URI at one of them, or add a {MANIFEST_FILE} naming its model_file."
    )

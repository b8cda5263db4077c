"""From a model URI to the ``storageUri`` a pod downloads: inspect, upload, describe.

A remote URI (``s3://``, ``gs://``, ``pvc://``, ``https://``...) is used as it is. A local
model directory is uploaded to the deployer's ``model_store`` under a content digest, so
the same files give the same URI (a redeploy is a no-op) and new files a new one (the
operator rolls the pods). The upload also gets a ``model-settings.json`` when MLServer
(the runtime behind Seldon's and KServe's V2 scikit-learn, XGBoost, LightGBM and MLflow
servers) can load the directory as it is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import DeploymentError

__all__ = ["ModelFacts", "inspect_model", "is_remote", "mlserver_settings", "upload_model"]

#: Schemes a pod's storage initializer fetches by itself.
_REMOTE = ("s3://", "gs://", "pvc://", "http://", "https://", "hf://", "azure://", "oci://")

#: MLServer runtime per format, and the file names its runtime finds on its own
#: (``mlserver_<x>``'s well-known file names): the directory loads without any setting.
_MLSERVER: dict[str, tuple[str, tuple[str, ...]]] = {
    "sklearn": ("mlserver_sklearn.SKLearnModel", ("model.joblib", "model.pickle", "model.pkl")),
    "xgboost": ("mlserver_xgboost.XGBoostModel", ("model.bst", "model.json", "model.ubj")),
    "lightgbm": ("mlserver_lightgbm.LightGBMModel", ("model.bst",)),
    "mlflow": ("mlserver_mlflow.MLflowRuntime", ("MLmodel",)),
}
SETTINGS_FILE = "model-settings.json"


@dataclass(frozen=True)
class ModelFacts:
    """What the deployer needs to know about a model before choosing its runtime."""

    uri: str
    #: Shipyard's format name (``sklearn``, ``onnx``, ``custom``...); empty when remote.
    format: str = ""
    model_file: str = ""
    #: A custom predictor (pre/post-processing, a non-default method): Shipyard's runtime.
    custom: bool = False
    local_dir: Path | None = None

    @property
    def platform_format(self) -> str | None:
        """The MLServer-backed format that loads this directory as it is, if any."""
        if self.custom or self.format not in _MLSERVER:
            return None
        _, files = _MLSERVER[self.format]
        return self.format if (self.model_file or "MLmodel") in files else None


def is_remote(uri: str) -> bool:
    return uri.startswith(_REMOTE)


def inspect_model(uri: str) -> ModelFacts:
    """Facts about a local model (its manifest); a remote URI is taken on trust."""
    if is_remote(uri):
        return ModelFacts(uri=uri)
    from shipyard.errors import ModelLoadError
    from shipyard.models._detect import detect_model

    path = Path(uri.removeprefix("file://")).expanduser()
    if not path.exists():
        raise DeploymentError(
            f"Cannot deploy {uri}: it does not exist. Save a model there first "
            "(`shipyard.save_model(model, path)`), or give a remote URI (s3://, gs://, pvc://)."
        )
    try:
        directory, manifest = detect_model(path.resolve())
    except ModelLoadError as err:
        raise DeploymentError(f"Cannot deploy {uri}: {err}") from err
    custom = (
        manifest.format == "custom"
        or manifest.predictor is not None
        or manifest.method not in (None, "predict")
    )
    return ModelFacts(
        uri=uri,
        format=manifest.format,
        model_file=manifest.model_file or "",
        custom=custom,
        local_dir=directory,
    )


def mlserver_settings(facts: ModelFacts, model_name: str) -> dict[str, object] | None:
    """MLServer's ``model-settings.json`` for the directory, when MLServer can load it."""
    fmt = facts.platform_format
    if fmt is None:
        return None
    implementation, _ = _MLSERVER[fmt]
    settings: dict[str, object] = {"name": model_name, "implementation": implementation}
    if facts.model_file:
        settings["parameters"] = {"uri": f"./{facts.model_file}"}
    return settings


def _digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(directory)).encode() + b"\0")
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def upload_model(
    facts: ModelFacts,
    model_name: str,
    model_store: str,
    model_store_uri: str = "",
    dry_run: bool = False,
) -> str:
    """The ``storageUri`` of ``facts``' model: uploaded to ``model_store`` if local.

    With ``dry_run`` the URI is computed and nothing is written.
    """
    if facts.local_dir is None:
        return facts.uri
    if not model_store:
        raise DeploymentError(
            f"The model {facts.uri} is a local directory, which a pod cannot read. Give the "
            "model deployer a model store to upload it to (`shipyard model-deployer update "
            "NAME --model_store=s3://bucket/models`), or deploy a remote URI."
        )
    settings = mlserver_settings(facts, model_name)
    digest = _digest(facts.local_dir)[:16]
    relative = f"{model_name}/{digest}"
    target = f"{model_store.rstrip('/')}/{relative}"
    uri = f"{(model_store_uri or model_store).rstrip('/')}/{relative}"
    if not dry_run:
        _copy(facts.local_dir, target, settings)
    return uri


def _copy(source: Path, target: str, settings: dict[str, object] | None) -> None:
    import fsspec

    fs, root = fsspec.core.url_to_fs(target)
    try:
        if fs.exists(f"{root}/.complete"):
            return  # the same digest is there already: same files
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            destination = f"{root}/{file.relative_to(source).as_posix()}"
            fs.makedirs(destination.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(file), destination)
        if settings is not None:
            with fs.open(f"{root}/{SETTINGS_FILE}", "w") as fh:
                fh.write(json.dumps(settings, indent=2))
        # Written last: a half-finished upload is never mistaken for a finished one.
        with fs.open(f"{root}/.complete", "w") as fh:
            fh.write("")
    except OSError as err:
        raise DeploymentError(f"Uploading {source} to {target} failed: {err}") from err

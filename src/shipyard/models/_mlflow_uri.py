"""MLflow model URIs (``models:/``, ``runs:/``, ``mlflow-artifacts:/``) through MLflow's client.

A registry URI is first *pinned*: ``models:/iris@champion`` or ``models:/iris/Production``
becomes ``models:/iris/3``, the version the alias or stage points at now. A pinned version
never changes its files, so its download is cached under ``$SHIPYARD_HOME/cache/models``
by tracking server, name and version and fetched once. The tracking server is the one
given, else ``MLFLOW_TRACKING_URI`` (MLflow's own rule).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from shipyard._imports import require
from shipyard.errors import ModelLoadError, ModelNotFoundError
from shipyard.models._cache import COMPLETE, cache_root, publish_entry

__all__ = [
    "MLFLOW_SCHEMES",
    "MLflowModelRef",
    "download_mlflow_model",
    "is_mlflow_uri",
    "pin_mlflow_uri",
    "tracking_uri_or_default",
]

MLFLOW_SCHEMES = ("models:", "runs:", "mlflow-artifacts:")


def is_mlflow_uri(uri: str | os.PathLike[str]) -> bool:
    """Whether ``uri`` is resolved by MLflow's client rather than a file system."""
    return os.fspath(uri).startswith(MLFLOW_SCHEMES)


def tracking_uri_or_default(tracking_uri: str | None) -> str:
    """The tracking server to ask: the one given, else MLflow's environment variable."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")


@dataclass(frozen=True)
class MLflowModelRef:
    """What an MLflow URI resolves to at one moment."""

    uri: str
    """The URI as given."""
    pinned_uri: str
    """``models:/name/version`` for registry URIs; the URI itself otherwise."""
    tracking_uri: str
    registered_name: str = ""
    version: str = ""
    alias: str = ""
    stage: str = ""


def _mlflow() -> Any:
    return require("mlflow", package="mlflow", extra="mlflow", purpose="MLflow model URIs")


def _check_reachable(tracking_uri: str) -> None:
    """One quick request before MLflow's client, which retries for minutes on a dead host."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import httpx

    from shipyard.models._uri import display_uri

    # Credentials as basic auth, not in the URL: httpx logs the URL of every request.
    parts = urlsplit(tracking_uri.rstrip("/") + "/health")
    auth = None
    if parts.username is not None:
        auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
    url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    try:
        httpx.get(url, auth=auth, timeout=5.0)
    except httpx.HTTPError as err:
        raise ModelLoadError(
            f"Cannot reach the MLflow tracking server at {display_uri(tracking_uri)} "
            f"({type(err).__name__}); start it or pass the right --tracking-uri."
        ) from err


def _client(tracking_uri: str) -> Any:
    _check_reachable(tracking_uri)
    mlflow = _mlflow()
    return mlflow.MlflowClient(tracking_uri=tracking_uri or None)


def _versions_text(client: Any, name: str) -> str:
    versions = sorted(
        (v for v in client.search_model_versions(f"name='{name}'")),
        key=lambda v: int(v.version),
    )
    shown = []
    for v in versions:
        aliases = list(getattr(v, "aliases", []) or [])
        extra = f" (@{', @'.join(aliases)})" if aliases else ""
        shown.append(f"{v.version}{extra}")
    return ", ".join(shown) or "(none)"


def _registered_model(client: Any, name: str, uri: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as err:
        if getattr(err, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise ModelLoadError(f"Resolving {uri} failed: {err.message}") from err
        names = sorted(m.name for m in client.search_registered_models(max_results=50))
        raise ModelNotFoundError(
            f"No registered model '{name}' for {uri}; registered models: "
            f"{', '.join(names) or '(none)'}."
        ) from err


def pin_mlflow_uri(uri: str, tracking_uri: str | None = None) -> MLflowModelRef:
    """Resolve an alias, stage or ``latest`` to the registered version it names now.

    Raises ModelNotFoundError (listing what exists) for an unknown model, version, alias
    or stage, and ModelLoadError when the tracking server cannot be reached.
    """
    tracking = tracking_uri_or_default(tracking_uri)
    if not uri.startswith("models:/"):
        return MLflowModelRef(uri=uri, pinned_uri=uri, tracking_uri=tracking)
    rest = uri.removeprefix("models:/").strip("/")
    name, at, alias = rest.partition("@")
    version = stage = ""
    if not at:
        name, _, tail = rest.partition("/")
        if not tail:
            # models:/m-<id>: an MLflow 3 logged model, not in the registry.
            return MLflowModelRef(uri=uri, pinned_uri=uri, tracking_uri=tracking)
        if tail.isdigit():
            version = tail
        else:
            stage = tail
    client = _client(tracking)
    from mlflow.exceptions import MlflowException

    _registered_model(client, name, uri)
    try:
        if alias:
            found = client.get_model_version_by_alias(name, alias)
        elif version:
            found = client.get_model_version(name, version)
        else:
            with warnings.catch_warnings():
                # Stages are deprecated in MLflow 3 but still what ZenML's users write.
                warnings.simplefilter("ignore")
                stages = None if stage.lower() == "latest" else [stage]
                latest = client.get_latest_versions(name, stages=stages)
            if not latest:
                raise MlflowException(f"no version in stage '{stage}'")
            found = max(latest, key=lambda v: int(v.version))
    except MlflowException as err:
        what = (
            f"alias '@{alias}'"
            if alias
            else f"version {version}"
            if version
            else f"version in stage '{stage}'"
        )
        raise ModelNotFoundError(
            f"The registered model '{name}' has no {what} ({uri}); its versions: "
            f"{_versions_text(client, name)}."
        ) from err
    return MLflowModelRef(
        uri=uri,
        pinned_uri=f"models:/{name}/{found.version}",
        tracking_uri=tracking,
        registered_name=name,
        version=str(found.version),
        alias=alias,
        stage=stage,
    )


def _cache_dir(ref: MLflowModelRef) -> Path:
    key = hashlib.sha256(f"{ref.tracking_uri}\0{ref.pinned_uri}".encode()).hexdigest()[:32]
    return cache_root() / "mlflow" / key


def download_mlflow_model(uri: str, tracking_uri: str | None = None) -> tuple[Path, MLflowModelRef]:
    """The local directory of the MLflow model at ``uri`` (downloaded once) and its pin."""
    ref = pin_mlflow_uri(uri, tracking_uri)
    entry = _cache_dir(ref)
    cached = _cached(entry)
    if cached is not None:
        return cached, ref
    if not ref.registered_name:
        _check_reachable(ref.tracking_uri)
    mlflow = _mlflow()
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=entry.parent))
    try:
        (staging / "model").mkdir()
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=ref.pinned_uri,
            dst_path=str(staging / "model"),
            tracking_uri=ref.tracking_uri or None,
        )
        # A run's artifact lands in a sub-directory of its own name; a registry model not.
        relative = str(Path(local).resolve().relative_to(staging.resolve()))
        marker = {"uri": ref.pinned_uri, "path": relative}
        publish_entry(staging, entry, json.dumps(marker))
    except Exception as err:
        if isinstance(err, ModelNotFoundError | ModelLoadError):
            raise
        raise ModelLoadError(
            f"Downloading the MLflow model {ref.pinned_uri} from "
            f"{ref.tracking_uri or 'the default tracking store'} failed: "
            f"{type(err).__name__}: {err}".splitlines()[0]
        ) from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    cached = _cached(entry)
    if cached is None:
        raise ModelLoadError(f"The download of {ref.pinned_uri} into {entry} is incomplete.")
    return cached, ref


def _cached(entry: Path) -> Path | None:
    try:
        marker = json.loads((entry / COMPLETE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path = entry / str(marker.get("path", "model"))
    return path if path.exists() else None

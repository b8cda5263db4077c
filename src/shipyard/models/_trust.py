"""Whose decision it is to run a model's code: the loader's side of model trust.

Some formats run code when they are loaded: a pickle or joblib file (unpickling calls
whatever the file names), an MLflow pyfunc (cloudpickle), a predictor class saved with
the model. Loading such a model is a decision to run its author's code, so:

* a local file or folder was named by the user: that is the decision; it loads, with one
  log line saying the format runs code;
* a model from the user's own MLflow registry (``models:/``, ``runs:/``, through their
  tracking server) is theirs too;
* a model from any other URI (http(s), s3, gs, any fsspec scheme) needs an explicit
  decision: ``trusted=True`` (``--trust``), a URI prefix in ``SHIPYARD_TRUSTED_MODEL_URIS``,
  or the content's SHA-256 pinned by the caller (``sha256=``, ``--sha256``). Otherwise
  it is refused with one line naming the risk and the formats that run no code.

skops files run no code, but may need types beyond skops' safe defaults. Those types
come from the caller (``trusted_types=``, ``SHIPYARD_TRUSTED_TYPES``; all of them with an
explicit ``trusted=True``), never from the model's own ``shipyard.yaml``: a file cannot
vouch for itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from shipyard.errors import ModelLoadError, UntrustedModelError
from shipyard.models.manifest import ModelManifest

__all__ = ["ALL_TYPES", "check_trust", "code_risk", "content_sha256", "skops_types"]

_log = logging.getLogger("shipyard.models")

#: In a manifest's ``trusted_types`` at load time: every type the skops file needs.
ALL_TYPES = "*"

_PICKLED = {"joblib": "a joblib file", "pickle": "a pickle file"}
_PICKLE_SUFFIXES = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}
#: Files in a model directory that are not its content: caches Shipyard writes there.
_NOT_CONTENT = (".shipyard", ".shipyard-fetched.json")

SAFE_FORMATS = "skops, ONNX, or native XGBoost/LightGBM files"


def code_risk(manifest: ModelManifest) -> str | None:
    """What in this model runs code when it loads, or None if nothing does."""
    if manifest.predictor:
        return f"Python code saved with the model (predictor {manifest.predictor})"
    if manifest.format == "custom":
        return "a custom predictor"
    if manifest.format == "mlflow":
        return "an MLflow pyfunc model (cloudpickle)"
    if manifest.format == "sklearn":
        ser = manifest.serialization
        if ser is None and manifest.model_file:
            ser = _PICKLE_SUFFIXES.get(Path(manifest.model_file).suffix.lower())
        if ser in _PICKLED:
            return _PICKLED[ser]
    return None


def content_sha256(path: Path) -> str:
    """The SHA-256 a caller pins: a file's own digest (what ``sha256sum`` prints); for a
    folder, the digest of its sorted ``<relative path>\\0<file digest>`` lines."""
    if path.is_file():
        return _file_sha256(path)
    lines = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.split("/")[0] in _NOT_CONTENT:
            continue
        lines.append(f"{rel}\0{_file_sha256(file)}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _without_credentials(uri: str) -> str:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def allow_listed(uri: str, prefixes: list[str]) -> bool:
    """Whether ``uri`` is under one of ``prefixes`` (at a path boundary: the prefix
    ``s3://b/models`` covers ``s3://b/models/x``, not ``s3://b/models-x``)."""
    plain = _without_credentials(uri)
    for prefix in prefixes:
        prefix = prefix.strip()
        if not prefix:
            continue
        if prefix.endswith("/") and plain.startswith(prefix):
            return True
        if plain == prefix or plain.startswith(prefix + "/"):
            return True
    return False


def check_trust(
    uri: str | os.PathLike[str],
    local: Path,
    manifest: ModelManifest,
    *,
    trusted: bool,
    sha256: str | None,
) -> bool:
    """Refuse a model whose loading would run code nobody decided to run; whether the
    caller trusts it explicitly (which widens skops' types to all the file needs).

    A pinned ``sha256`` is checked whatever the format: a mismatch is refused."""
    from shipyard.config import get_settings
    from shipyard.models._mlflow_uri import is_mlflow_uri
    from shipyard.models._uri import display_uri, is_local_uri

    text = os.fspath(uri)
    if sha256 is not None:
        want = sha256.strip().lower().removeprefix("sha256:")
        got = content_sha256(local)
        if got != want:
            raise UntrustedModelError(
                f"Refusing to load {display_uri(text)}: its SHA-256 is {got}, not the pinned "
                f"{want}; the model changed or is not the one you meant."
            )
    settings = get_settings()
    explicit = trusted or sha256 is not None or allow_listed(text, settings.trusted_model_uris)
    risk = code_risk(manifest)
    if risk is None or explicit:
        return explicit
    # memory:// lives in this process: only its own code can have written it.
    if is_local_uri(text) or text.startswith("memory://"):
        _log.info("%s is %s: loading it runs code from it.", local, risk)
        return False
    if is_mlflow_uri(text):
        # Through the user's own tracking server: their registry, their decision.
        _log.info("%s is %s: loading it runs code from it.", display_uri(text), risk)
        return False
    raise UntrustedModelError(
        f"Refusing to load {display_uri(text)}: it is {risk}, and loading it runs whatever "
        "code its author put in it. If you trust its source, pass --trust (trusted=True), pin "
        "its content with --sha256 HEX, or add its URI prefix to SHIPYARD_TRUSTED_MODEL_URIS; "
        f"or save the model as {SAFE_FORMATS}, which run no code."
    )


def skops_types(manifest: ModelManifest, trusted_types: list[str], explicit: bool) -> ModelManifest:
    """``manifest`` with the skops types this load may use: the caller's and the allow-list's
    (every type the file needs when the caller trusts it explicitly), never the file's own."""
    from shipyard.config import get_settings

    allowed = [ALL_TYPES] if explicit else sorted({*trusted_types, *get_settings().trusted_types})
    return manifest.model_copy(update={"trusted_types": allowed})


def refuse_skops(path: Path, refused: list[str]) -> ModelLoadError:
    """The error for a skops file needing types nobody trusted."""
    listed = ", ".join(refused)
    return ModelLoadError(
        f"The skops file {path} needs types that are not trusted: {listed}. If you trust "
        f"them, pass trusted_types={refused!r} to load_model (or add them to "
        "SHIPYARD_TRUSTED_TYPES, a JSON list), or --trust / trusted=True to allow every type "
        "the file needs. The model's own shipyard.yaml cannot vouch for itself."
    )

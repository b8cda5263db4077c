"""Model URIs: a local path, ``file://``, or any fsspec URL, fetched once into a cache.

Remote models are copied into ``$SHIPYARD_HOME/cache/models/<key>`` where the key hashes
the URI and the remote object's fingerprint (etag, else modification time and size), so a
changed remote model is fetched again and an unchanged one never is. A fetch lands in a
temporary sibling directory first and is renamed into place, so a crash mid-download or
two processes fetching at once never leave a half-written cache entry behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from shipyard.errors import ModelLoadError, ModelNotFoundError
from shipyard.models._cache import COMPLETE, cache_root, publish_entry

__all__ = ["display_uri", "is_local_uri", "resolve_model_uri", "uri_stem"]

_log = logging.getLogger("shipyard.models")

_FINGERPRINT_KEYS = (
    "ETag",
    "etag",
    "md5Hash",
    "md5",
    "generation",
    "version_id",
    "LastModified",
    "last_modified",
    "mtime",
    "updated",
    "created",
    "size",
)


def display_uri(uri: str | os.PathLike[str], text: str | None = None) -> str:
    """``uri`` (or ``text`` mentioning it) with the URI's credentials replaced by ``***``.

    Error messages and logs name the model URI; credentials written into it
    (``https://bob:secret@host/model``) must not reach a terminal or a CI log.
    """
    from shipyard._redact import mask_credentials

    return mask_credentials(os.fspath(uri) if text is None else text)


def is_local_uri(uri: str | os.PathLike[str]) -> bool:
    text = os.fspath(uri)
    if text.startswith("file://"):
        return True
    scheme = urlparse(text).scheme
    # "C:\\..." parses with scheme "c"; one letter is a drive, not a protocol.
    return scheme == "" or len(scheme) == 1


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    return Path(uri).expanduser()


def uri_stem(uri: str | os.PathLike[str]) -> str:
    """The last path component of a URI without its suffix: the default model name."""
    text = os.fspath(uri)
    if text.startswith("models:/"):
        # models:/iris/3, models:/iris@champion: the registered model's name.
        return text.removeprefix("models:/").strip("/").split("/")[0].split("@")[0] or "model"
    path = urlparse(text).path if not is_local_uri(text) else str(_local_path(text))
    name = Path(path.rstrip("/")).name or "model"
    return Path(name).stem if "." in name else name


def _fingerprint(info: dict[str, Any]) -> dict[str, str]:
    return {k: str(info[k]) for k in _FINGERPRINT_KEYS if info.get(k) is not None}


def resolve_model_uri(uri: str | os.PathLike[str], *, tracking_uri: str | None = None) -> Path:
    """Return a local path for ``uri``: local paths as they are, remote ones fetched and cached.

    MLflow URIs (``models:/``, ``runs:/``, ``mlflow-artifacts:/``) go through MLflow's
    client against ``tracking_uri`` (default: ``MLFLOW_TRACKING_URI``).
    Raises ``ModelNotFoundError`` if nothing is at the URI and ``ModelLoadError`` if it
    cannot be fetched.
    """
    text = os.fspath(uri)
    from shipyard.models._mlflow_uri import download_mlflow_model, is_mlflow_uri

    if is_mlflow_uri(text):
        return download_mlflow_model(text, tracking_uri)[0]
    if is_local_uri(text):
        path = _local_path(text)
        if not path.exists() and "{{secret." in text:
            # The CLI resolves references; from Python the caller does (models/ reads no
            # store).
            raise ModelNotFoundError(
                f"The model URI {text!r} holds a secret reference, which load_model does "
                "not resolve: pass shipyard.secrets.resolve_references(uri, get_secret), "
                "or the URI itself."
            )
        if not path.exists():
            raise ModelNotFoundError(
                f"No model at {text!r}: the path does not exist. Pass a model directory "
                "written by save_model, a model file (model.joblib, model.onnx, ...) or a URL."
            )
        return path.resolve()
    return _fetch_cached(text)


def _index_file(uri: str) -> Path:
    return cache_root() / "by-uri" / hashlib.sha256(uri.encode()).hexdigest()[:32]


def _remember(uri: str, path: Path) -> None:
    """Record which cache entry holds the newest fetch of ``uri`` (for offline restarts)."""
    index = _index_file(uri)
    _mkdir_private(index.parent)
    tmp = index.with_name(f".{index.name}.{os.getpid()}.{threading.get_ident()}")
    # The file name hashes the full URI; its text names it masked (no credentials on disk).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"uri": display_uri(uri), "path": str(path)}))
    os.replace(tmp, index)  # atomic: readers see the old or the new record, never half


def _last_fetched(uri: str) -> Path | None:
    try:
        record = json.loads(_index_file(uri).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path = Path(record.get("path", ""))
    if (
        record.get("uri") != display_uri(uri)
        or not (path.parent / COMPLETE).is_file()
        or not path.exists()
    ):
        return None
    return path


def _relative(rpath: str, prefix: str) -> str:
    # Listings may drop the leading "/" the caller gave (or add one): compare without it.
    rel = rpath.lstrip("/").removeprefix(prefix.lstrip("/"))
    if rel == rpath.lstrip("/") or rel.startswith("/") or ".." in rel.split("/"):
        raise ModelLoadError(f"Unexpected file {rpath!r} listed under {prefix!r}.")
    return rel


def _mkdir_private(folder: Path) -> None:
    """``folder`` and each missing parent created 0700 (``mkdir(parents=True)`` would
    give the parents the umask's mode)."""
    for path in [*reversed(folder.parents), folder]:
        if not path.exists():
            path.mkdir(mode=0o700, exist_ok=True)


def _make_private(folder: Path) -> None:
    """Owner-only (0700 folders, 0600 files), like the rest of SHIPYARD_HOME: a fetched
    model may be confidential."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)


def _refused_status(err: BaseException) -> int | None:
    """401 or 403 when ``err`` stands for an HTTP refusal: fsspec's HTTP file system reports
    every failed lookup as FileNotFoundError, the status is on the cause it wraps."""
    cause: BaseException | None = err
    for _ in range(5):  # a short chain; never loop on a cycle
        if cause is None:
            return None
        status = getattr(cause, "status", None)
        if status in (401, 403):
            return int(status)
        cause = cause.__cause__ or cause.__context__
    return None


def _fetch_cached(uri: str) -> Path:
    import fsspec  # imported here: local loads (the common case) do not need it

    try:
        fs, remote = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as err:
        raise ModelLoadError(
            f"Cannot open model URI {display_uri(uri)!r}: {display_uri(uri, str(err))}. "
            "Check the protocol; remote file systems need their fsspec package (s3fs, "
            "gcsfs, adlfs; aiohttp and requests for http/https)."
        ) from err
    try:
        info = fs.info(remote)
    except FileNotFoundError as err:
        status = _refused_status(err)
        if status is not None:
            raise ModelLoadError(
                f"The server of {display_uri(uri)!r} refused access (HTTP {status}): check the "
                "credentials in the URI (user:password@, a token parameter) or in the secret "
                "it refers to."
            ) from err
        raise ModelNotFoundError(
            f"No model at {display_uri(uri)!r}: nothing exists at that URL."
        ) from err
    except Exception as err:  # remote file systems raise their own types
        cached = _last_fetched(uri)
        if cached is not None:
            # A server restarting while the store is unreachable keeps serving the
            # version it fetched last, rather than failing to start.
            _log.warning(
                "Cannot reach %s (%s); using the copy fetched before: %s",
                display_uri(uri),
                display_uri(uri, str(err)),
                cached,
            )
            return cached
        raise ModelLoadError(
            f"Cannot reach model URI {display_uri(uri)!r}: {display_uri(uri, str(err))}. No "
            "copy was fetched before; check the URL, the credentials and the network."
        ) from err

    is_dir = info.get("type") == "directory"
    files: dict[str, Any] = {}
    if is_dir:
        # A directory has no etag of its own: fingerprint every file in it.
        files = fs.find(remote, detail=True)
        fp: Any = {name: _fingerprint(meta) for name, meta in sorted(files.items())}
    else:
        fp = _fingerprint(info)
    key_src = json.dumps({"uri": uri, "fingerprint": fp}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    root = cache_root()
    entry = root / key
    name = Path(remote.rstrip("/")).name or "model"
    if (entry / COMPLETE).is_file():
        _remember(uri, entry / name)
        return entry / name

    _mkdir_private(root)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        target = staging / name
        if is_dir:
            # File by file from the listing we fingerprinted, so the cache holds exactly
            # the version the key names (fsspec's recursive get varies by backend).
            prefix = remote.rstrip("/") + "/"
            for rpath in sorted(files):
                rel = _relative(rpath, prefix)
                local = target / rel
                local.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(rpath, str(local))
            target.mkdir(exist_ok=True)
        else:
            fs.get_file(remote, str(target))
        marker = json.dumps({"uri": display_uri(uri), "fingerprint": fp}, sort_keys=True)
        _make_private(staging)
        publish_entry(staging, entry, marker)
    except Exception as err:
        raise ModelLoadError(
            f"Fetching model {display_uri(uri)!r} into the cache {root} failed: "
            f"{display_uri(uri, str(err))}"
        ) from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remember(uri, entry / name)
    return entry / name

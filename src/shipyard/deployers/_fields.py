"""Rules for deployment-config fields that every flavor applies the same way."""

from __future__ import annotations

from pathlib import Path

from shipyard.models._uri import is_local_uri

__all__ = ["absolute_model_path"]


def absolute_model_path(uri: str) -> str:
    """``uri`` with a relative local path made absolute (``~`` expanded); a URI with a
    scheme (``s3://``, ``models:/``, ``file://``) or an absolute path as it is.

    A config is kept (the registry, a resource's annotations) and used later from
    another directory: a relative path would then name another folder."""
    if uri and is_local_uri(uri) and not uri.startswith(("/", "file://")):
        return str(Path(uri).expanduser().resolve())
    return uri

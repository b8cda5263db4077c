"""The artifact store: where step outputs live, as files under one root URL.

The root is a local directory (``$SHIPYARD_HOME/artifacts`` by default) or any fsspec
URL. Every output gets a fresh directory of its own, so a re-run never overwrites what
an earlier run (or a running model server) still reads.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from shipyard.pipelines._errors import ArtifactError

__all__ = ["Artifact", "ArtifactStore", "content_hash"]


@dataclass(frozen=True)
class Artifact:
    """A written step output: where it is, how to read it, and what it holds.

    Annotate a step parameter with ``Artifact`` to get the input's artifact instead of its
    value: a deployer step deploys a model by the URI of its model directory this way.
    """

    uri: str
    materializer: str
    """Name of the materializer that wrote it, and that reads it back."""
    data_type: str
    """``module.QualName`` of the value that was written."""
    content_hash: str
    """SHA-256 over the artifact's files: the cache key of the steps that read it."""
    summary: dict[str, Any] = field(default_factory=dict)
    """What the materializer reports about the value (shape, service UUID and URL, ...)."""


class ArtifactStore:
    """Files of step outputs under ``root`` (a local path or an fsspec URL)."""

    def __init__(self, root: str | Path) -> None:
        root_text = str(root)
        if "://" not in root_text:
            # Local paths are made absolute so the URIs recorded in the store (and handed
            # to model servers) do not depend on the working directory.
            root_text = str(Path(root_text).expanduser().resolve())
        self.root = root_text.rstrip("/") or "/"
        try:
            self.fs, _ = fsspec.core.url_to_fs(self.root)
        except (ImportError, ValueError) as err:
            raise ArtifactError(
                f"Cannot open the artifact store at '{self.root}': {err}. Use a local path "
                "or an fsspec URL whose filesystem package is installed (e.g. s3fs for s3://)."
            ) from err

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def output_uri(self, pipeline_name: str, step_name: str, step_run_id: str, output: str) -> str:
        """A fresh URI for one output of one step run."""
        return posixpath.join(self.root, pipeline_name, step_name, step_run_id, output)

    def exists(self, uri: str) -> bool:
        fs, path = fsspec.core.url_to_fs(uri)
        return bool(fs.exists(path))

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"


def content_hash(uri: str) -> str:
    """SHA-256 over every file below ``uri`` (relative path and bytes), in sorted order."""
    fs, root = fsspec.core.url_to_fs(uri)
    digest = hashlib.sha256()
    try:
        paths = sorted(p for p in fs.find(root) if not fs.isdir(p))
        for path in paths:
            relative = posixpath.relpath(path, root) if path != root else ""
            digest.update(relative.encode() + b"\0")
            with fs.open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    except OSError as err:
        raise ArtifactError(f"Cannot read the artifact at '{uri}' to hash it: {err}") from err
    return digest.hexdigest()

"""The model cache both fetchers fill (remote files via fsspec, MLflow URIs via MLflow):
where it lives, and how an entry becomes visible only once it is complete."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["COMPLETE", "cache_root", "publish_entry"]

#: Marker written into a cache entry once it is complete.
COMPLETE = ".shipyard-fetched.json"


def cache_root() -> Path:
    """Where fetched models are cached: ``$SHIPYARD_HOME/cache/models``."""
    home = os.environ.get("SHIPYARD_HOME") or str(Path.home() / ".shipyard")
    return Path(home).expanduser() / "cache" / "models"


def publish_entry(staging: Path, entry: Path, marker: str) -> None:
    """Mark the filled ``staging`` directory complete and make it ``entry`` in one rename,
    so a reader sees a whole entry or none. A concurrent fetch of the same entry that
    finished first wins: its copy is as good as ours (the caller removes ``staging``)."""
    # Private like the rest of SHIPYARD_HOME: the marker names the model's (masked) URI.
    fd = os.open(staging / COMPLETE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(marker)
    try:
        staging.rename(entry)
    except OSError:
        if not (entry / COMPLETE).is_file():
            raise

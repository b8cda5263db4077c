"""The fingerprint of a local model's files: what the control plane records when it deploys
a model and what the supervisor reports (control ``status``) for the model it serves.

One function for both sides, so "the registry says X" and "the server serves X" compare
the same thing. It stays import-light (the supervisor uses it): hashlib and pathlib only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["model_fingerprint"]


def model_fingerprint(model_uri: str) -> str:
    """A digest of the names, sizes and modification times of a local model's files;
    empty for remote URIs (their URI alone identifies them) and missing paths."""
    path = Path(model_uri.removeprefix("file://"))
    if ("://" in model_uri and not model_uri.startswith("file://")) or not path.exists():
        return ""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        try:
            stat = file.stat()
        except OSError:  # removed while we walked: it is not part of the model any more
            continue
        digest.update(
            f"{file.relative_to(path.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()

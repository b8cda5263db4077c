"""The job manifest: which shards are finished, written atomically after each one.

Only the coordinating process writes it. A shard counts as finished when its part has
been renamed into place *and* the manifest says so; a part without a manifest entry
(a kill between the two) is simply redone, overwriting it with the same rows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.errors import ConfigError

__all__ = ["MANIFEST_NAME", "JobManifest", "ShardRecord"]

MANIFEST_NAME = "_manifest.json"


class ShardRecord(BaseModel):
    """One finished shard."""

    model_config = ConfigDict(extra="forbid")

    key: str
    """The shard's identity (file, size, mtime, range); a changed file does not match."""
    rows: int
    """Rows written (accepted)."""
    rejected: int = 0
    part: str | None = None
    """File name of the output part, None when every row was rejected."""
    rejects: str | None = None
    """File name of the rejected rows (JSON lines), if any."""
    node: str | None = None
    """The Ray node id whose actor read and predicted the shard (``--engine ray``)."""


class JobManifest(BaseModel):
    """Contents of ``_manifest.json`` in the staging (or output) directory."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    options: dict[str, Any]
    """What decides the output (model, columns, formats, input files): a resume must match."""
    shards_total: int = 0
    done: dict[int, ShardRecord] = Field(default_factory=dict)
    complete: bool = False

    @classmethod
    def read(cls, directory: Path) -> JobManifest | None:
        path = directory / MANIFEST_NAME
        if not path.exists():
            return None
        try:
            return cls.model_validate_json(path.read_bytes())
        except (ValidationError, ValueError) as err:
            raise ConfigError(
                f"The job manifest {path} is unreadable ({err}); start over with --overwrite."
            ) from err

    def write(self, directory: Path) -> None:
        path = directory / MANIFEST_NAME
        tmp = path.with_name(path.name + ".tmp")
        data = self.model_dump_json(indent=1).encode()
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def check_resumable(self, options: dict[str, Any], where: str) -> None:
        """Refuse to mix the outputs of two different jobs."""
        if self.options == options:
            return
        keys = sorted(
            k for k in set(self.options) | set(options) if self.options.get(k) != options.get(k)
        )
        details = "; ".join(
            f"{k}: was {json.dumps(self.options.get(k))}, now {json.dumps(options.get(k))}"
            for k in keys
        )
        raise ConfigError(
            f"The unfinished job at {where} was started with other settings ({details}). "
            "Run it with the same settings to resume, or pass --overwrite to start over."
        )

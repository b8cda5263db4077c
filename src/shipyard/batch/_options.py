"""The options of a batch job and the summary it returns."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BatchOptions", "BatchSummary"]


class BatchOptions(BaseModel):
    """Everything ``shipyard batch predict`` takes; see ``shipyard.batch.predict``."""

    model_config = ConfigDict(extra="forbid")

    model_uri: str | None = None
    """The model to load in every worker (path, ``file://`` or fsspec URL)."""
    service: str | None = None
    """Instead of loading the model: a running model server's V2 model URL."""
    input: str
    """A file, a directory or a glob of Parquet, CSV or JSON-lines files."""
    output: str
    """A file (``.parquet``, ``.csv``, ``.jsonl``), a directory of parts, or a database URL."""
    format: Literal["parquet", "csv", "jsonl"] | None = None
    """Output format; default: from the output's suffix, Parquet for a directory."""
    input_format: Literal["parquet", "csv", "jsonl"] | None = None
    """Input format; default: from the files' suffixes."""
    columns: list[str] | None = None
    """The model's input columns; default: the model signature's, else all but id/keep."""
    id_column: str | None = None
    """An input column copied to the output as its first column."""
    keep_columns: list[str] = Field(default_factory=list)
    """Input columns copied to the output, after the id column, before the predictions."""
    batch_size: int = Field(default=65_536, gt=0)
    """Rows per predictor call."""
    workers: int = Field(default=1, ge=1)
    """Processes predicting in parallel: 1 = this one; N > 1 = N worker processes, with
    this one handing out shards and writing the manifest."""
    resume: bool = False
    """Continue an unfinished job: finished shards are kept, the others are done."""
    on_error: Literal["fail", "skip"] = "fail"
    """Rows the predictor rejects: stop the job, or write them aside and go on."""
    overwrite: bool = False
    """Replace an existing output (and any unfinished job writing it)."""
    table: str = "predictions"
    """Table name when the output is a database URL."""
    staging_dir: str | None = None
    """Where a database output's parts wait to be committed; default next to the DB."""
    input_as: Literal["auto", "numpy", "dict", "pandas"] = "auto"
    """What the predictor's preprocess gets: auto = as the model server would pass it."""
    shard_rows: int = Field(default=1 << 18, gt=0)
    """Target rows per shard for Parquet input (the unit of work and of resume)."""
    shard_bytes: int = Field(default=64 << 20, gt=0)
    """Target bytes per shard for CSV and JSON-lines input."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for one request to a model server (``service`` only)."""
    trusted: bool = False
    """Trust the model's code: a pickle/joblib model from a remote URI loads (see
    ``shipyard.models.load_model``)."""
    sha256: str | None = None
    """SHA-256 of the model's content, checked before loading (a match trusts it)."""
    service_headers: dict[str, str] | None = Field(default=None, exclude=True, repr=False)
    """Headers every request to the model server carries (its bearer token); taken from
    the Service object, never dumped, logged or written to the job's manifest."""
    progress: bool = False
    """Show a Rich progress bar on stderr."""
    engine: Literal["local", "ray"] = "local"
    """Who predicts the shards: processes on this machine, or actors on a Ray cluster
    (``workers`` then counts actors; 1 = one per free CPU of the cluster)."""
    address: str | None = None
    """``engine="ray"``: the cluster (``auto``, ``host:port``, ``ray://host:10001``)."""

    @model_validator(mode="after")
    def _one_model(self) -> BatchOptions:
        if (self.model_uri is None) == (self.service is None):
            raise ValueError("give either model_uri or service, not both and not neither")
        if self.id_column is not None and self.id_column in self.keep_columns:
            raise ValueError(f"{self.id_column!r} is the id column; do not list it in keep_columns")
        return self

    def load_trust(self) -> dict[str, Any]:
        """The trust options ``load_model`` takes for ``model_uri``."""
        return {"trusted": self.trusted, "sha256": self.sha256}


class BatchSummary(BaseModel):
    """What a finished job did."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int
    """Rows written to the output (all shards, resumed ones included)."""
    rejected: int
    """Rows the predictor rejected (written aside)."""
    seconds: float
    """Wall time of this run."""
    rows_per_second: float
    """Rows predicted by this run per second of scoring (from the model being ready to
    the last batch): the progress bar's last figure."""
    output: str
    """Where the predictions are."""
    rejects: str | None
    """Where the rejected rows are, if any."""
    shards: int
    shards_resumed: int
    """Shards finished by an earlier run and kept."""
    workers: int
    """Processes that predicted (fewer than asked when there were fewer shards)."""
    nodes: dict[str, int] = Field(default_factory=dict)
    """``--engine ray``: shards read and predicted per Ray node id (resumed ones too)."""

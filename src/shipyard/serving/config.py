"""Configuration of the model server: per-model batching and the server as a whole.

``ServerConfig`` reads ``SHIPYARD_SERVER_*`` environment variables (pydantic-settings),
so a container can be configured without arguments; the CLI fills the same model.
Importing this module stays cheap (no numpy, no web framework): the supervisor uses it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shipyard.errors import ConfigError
from shipyard.serving.auth import DEFAULT_OPEN_PATHS, read_token_file

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "AdmissionConfig",
    "BatchingConfig",
    "ModelSpec",
    "ServerConfig",
    "check_model_name",
]

#: 32 MiB: a few million JSON numbers or a 100-image uint8 batch, per request (it used to
#: be 100 MB). gRPC's own default is 4 MiB, nginx's 1 MiB; MLServer and KServe's REST
#: servers set none and leave the cap to the ingress. Ours is per request; what a worker
#: holds over all its connections is capped by ``max_buffered_bytes``.
DEFAULT_MAX_BODY_SIZE = 32 * 1024 * 1024
#: The least per-worker cap on request bytes held (``max_buffered_bytes``).
MIN_BUFFERED_BYTES = 256 * 1024 * 1024

# A name is one URL path segment in /v2/models/{name}/infer and /v1/models/{name}:predict:
# '/' would split it, and '.'/'..' alone would be resolved away by clients.
_MODEL_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_model_name(name: str) -> str:
    """``name`` if every protocol can address a model by it; ``ValueError`` otherwise."""
    if not _MODEL_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"A model name may use letters, digits, '-', '_' and '.'; got {name!r}")
    return name


class BatchingConfig(BaseModel):
    """Adaptive batching for one model (or the default for all of them)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    """Merge concurrent requests into one predict call. ``None``: on where the predictor
    declares ``supports_batching``."""
    max_batch_size: int = Field(default=1024, ge=1)
    """Most rows (not requests) one predict call receives; a request bigger than this runs
    alone. Rows, because a predict call costs by rows: eight 100-row requests merge too."""
    max_batch_delay: float = Field(default=0.002, ge=0.0, le=10.0)
    """Seconds a batch may wait for more requests, only while others are on their way:
    a lone request is never delayed."""
    executor: Literal["auto", "inline", "thread"] = "auto"
    """Where ``predict`` runs: on the event loop (``inline``), in a worker thread
    (``thread``), or ``auto`` (inline for the built-in CPU runtimes, thread otherwise)."""


class AdmissionConfig(BaseModel):
    """What one model admits in one worker: how long a request may take, how many wait."""

    model_config = ConfigDict(extra="forbid")

    request_timeout: float = Field(default=60.0, gt=0.0)
    """Seconds from a request's arrival to its answer; past it the client gets 504 (gRPC
    DEADLINE_EXCEEDED) and, if still queued, the request is never predicted."""
    max_queue: int = Field(default=1024, ge=1)
    """Requests of this model one worker holds at once (queued or predicting); one more is
    refused at once with 503 and ``Retry-After`` (gRPC UNAVAILABLE)."""


class ModelSpec(BaseModel):
    """One model to serve: where it is and, optionally, the name to serve it under."""

    model_config = ConfigDict(extra="forbid")

    uri: str
    """A model URI: a local path, ``file://`` or any fsspec URL."""
    name: str | None = None
    """Serve under this name instead of the model's own name."""
    batching: BatchingConfig | None = None
    """Batching for this model; ``None`` uses the server's default."""
    request_timeout: float | None = Field(default=None, gt=0.0)
    """This model's request timeout in seconds; ``None`` uses the server's."""
    max_queue: int | None = Field(default=None, ge=1)
    """Requests of this model one worker holds at once; ``None`` uses the server's."""
    trusted: bool = False
    """The caller trusts this model's code: a pickle/joblib model from a remote URI loads
    (see ``shipyard.models.load_model``), and a skops file gets every type it needs."""
    sha256: str | None = None
    """The SHA-256 of the model's content, pinned by the caller: checked before loading,
    and a match trusts the model."""
    trusted_types: list[str] = Field(default_factory=list)
    """skops types this model may load beyond skops' safe defaults."""
    origin: str | None = None
    """Where the files at ``uri`` were fetched from, when they are a copy (a Kubernetes
    pod's storage initializer downloads the model URI to /mnt/models): the trust rule of
    that URI applies, not the local path's, so a copy cannot launder a remote pickle."""

    def load_options(self) -> dict[str, Any]:
        """The trust options ``load_model`` takes for this spec."""
        return {
            "trusted": self.trusted,
            "sha256": self.sha256,
            "trusted_types": list(self.trusted_types),
            "origin": self.origin,
        }


class ServerConfig(BaseSettings):
    """Everything ``shipyard serve`` needs; env prefix ``SHIPYARD_SERVER_``."""

    model_config = SettingsConfigDict(
        env_prefix="SHIPYARD_SERVER_", env_nested_delimiter="__", extra="forbid"
    )

    host: str = "127.0.0.1"
    """Interface to bind; the default is local only. Use 0.0.0.0 in a container."""
    http_port: int = Field(default=8080, ge=0, le=65535)
    """HTTP port; 0 picks a free one."""
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    """gRPC port; ``None`` means ``http_port + 1`` (a free one if ``http_port`` is 0); 0
    picks a free one."""
    grpc_enabled: bool = True
    """Serve the Open Inference Protocol over gRPC as well (needs ``grpcio``)."""
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    """Worker processes sharing the ports; default one per core."""
    models: list[ModelSpec] = Field(default_factory=list)
    """Models to serve."""
    model_repository: Path | None = None
    """A directory with one model per subfolder, served under the subfolder's name."""
    max_body_size: int = Field(default=DEFAULT_MAX_BODY_SIZE, ge=1)
    """Largest request body (HTTP) or message (gRPC) in bytes, 32 MiB by default; bigger
    ones get 413 / RESOURCE_EXHAUSTED without being read."""
    max_buffered_bytes: int | None = Field(default=None, ge=1)
    """Request bytes one worker holds at once over all its connections (bodies being
    received, queued or predicted); past it a request gets 503 with ``Retry-After`` (the
    connection closes) or RST_STREAM REFUSED_STREAM on gRPC. ``None``: four times
    ``max_body_size``, at least 256 MiB."""
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    """Default batching for every model."""
    run_dir: Path | None = None
    """Directory for the control socket and metrics files; default: a fresh temp dir."""
    control_socket: Path | None = None
    """Unix socket of the control channel; default ``<run_dir>/control.sock``."""
    request_timeout: float = Field(default=60.0, gt=0.0)
    """Seconds a request may take from arrival to answer (504 / DEADLINE_EXCEEDED after);
    a model's own ``request_timeout`` and a client's ``grpc-timeout`` can shorten it."""
    max_queue: int | None = Field(default=None, ge=1)
    """Requests per model one worker holds at once before refusing more with 503;
    ``None``: twice the largest batch spread over the workers, at least 64."""
    expose_errors: bool = False
    """Send a predictor's own exception text to clients (for development); by default
    they get a generic message with a request id, and the text goes to the server log."""
    header_timeout: float = Field(default=10.0, gt=0.0)
    """Seconds a client may take to send a request's headers (HTTP) or the HTTP/2 preface
    (gRPC) before it is disconnected (408 on HTTP)."""
    body_timeout: float = Field(default=60.0, gt=0.0)
    """Seconds a client may take to send a request body once its headers are in."""
    idle_timeout: float = Field(default=30.0, gt=0.0)
    """Seconds a connection may stay open with no request in progress (HTTP keep-alive;
    gRPC: no call in flight) before the server closes it."""
    max_connections: int = Field(default=1000, ge=1)
    """Open HTTP connections per worker; one more gets 503 and is closed (gRPC has the
    same cap on its own port)."""
    graceful_timeout: float = Field(default=30.0, ge=0.0)
    """Seconds a stopping worker waits for in-flight requests before it exits anyway."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    """Log every HTTP request (method, path, status, latency) to the worker's log."""
    auth_token_file: Path | None = None
    """A file holding the bearer token every request must carry (``Authorization: Bearer
    <token>``; gRPC: ``authorization`` metadata). ``None``: no token (unless
    ``auth_token`` is set)."""
    auth_token: SecretStr | None = None
    """The token itself, for daemons and containers: set ``SHIPYARD_SERVER_AUTH_TOKEN``
    (e.g. from a Kubernetes Secret), never on the command line (``ps`` shows argv)."""
    open_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_OPEN_PATHS))
    """HTTP paths answered without a token when one is required: health and metrics by
    default (probes and scrapers carry no credentials). The gRPC ServerLive/ServerReady
    methods are open when ``/v2/health/live`` / ``/v2/health/ready`` are."""
    insecure: bool = False
    """Allow binding a non-loopback host with no token (a trusted network does the access
    control); without it such a bind is refused."""

    @field_validator("models")
    @classmethod
    def _names_fit_urls(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        # Here rather than on ModelSpec: a reload re-serves an already served name as is.
        for spec in models:
            if spec.name is not None:
                check_model_name(spec.name)
        return models

    @model_validator(mode="after")
    def _some_model(self) -> ServerConfig:
        if not self.models and self.model_repository is None:
            raise ConfigError(
                "No model to serve: give one or more model URIs "
                "(`shipyard serve ./my-model`) or --model-repository DIR."
            )
        return self

    def resolved_auth_token(self) -> str | None:
        """The bearer token to require (the file wins over the environment), or None."""
        if self.auth_token_file is not None:
            return read_token_file(self.auth_token_file)
        if self.auth_token is not None:
            token = self.auth_token.get_secret_value().strip()
            if not token:
                raise ConfigError("SHIPYARD_SERVER_AUTH_TOKEN is empty; set it to a token.")
            return token
        return None

    def all_models(self) -> list[ModelSpec]:
        """The explicit models plus one per subfolder of the model repository."""
        specs = list(self.models)
        if self.model_repository is not None:
            repo = Path(self.model_repository)
            if not repo.is_dir():
                raise ConfigError(
                    f"Model repository {str(repo)!r} is not a directory; "
                    "pass a folder holding one model per subfolder."
                )
            for sub in sorted(repo.iterdir()):
                if sub.is_dir() and not sub.name.startswith("."):
                    specs.append(ModelSpec(uri=str(sub), name=sub.name))
        return specs

    def buffered_bytes_cap(self) -> int:
        """``max_buffered_bytes``, or its default."""
        if self.max_buffered_bytes is not None:
            return self.max_buffered_bytes
        return max(MIN_BUFFERED_BYTES, 4 * self.max_body_size)

    def batching_for(self, spec: ModelSpec) -> BatchingConfig:
        return spec.batching if spec.batching is not None else self.batching

    def admission_for(self, spec: ModelSpec) -> AdmissionConfig:
        """The model's own limits where it has them, the server's otherwise."""
        queue = spec.max_queue or self.max_queue
        if queue is None:
            # Enough for two full batches of one-row requests across the workers: a
            # burst that big is served within two predict calls; more only waits.
            queue = max(64, 2 * self.batching_for(spec).max_batch_size // self.workers)
        return AdmissionConfig(
            request_timeout=spec.request_timeout or self.request_timeout, max_queue=queue
        )

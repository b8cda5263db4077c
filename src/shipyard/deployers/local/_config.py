"""The local flavor's deployment config, and which of its fields a running server can
take without new processes."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import Field, field_validator

from shipyard.deployers._fields import absolute_model_path
from shipyard.services.service import ServiceConfig

__all__ = [
    "PROCESS_FIELDS",
    "LocalDeploymentConfig",
    "LocalModelServerConfig",
    "keeping_processes",
    "reloadable",
]

_Config = TypeVar("_Config", bound="LocalModelServerConfig")

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class LocalModelServerConfig(ServiceConfig):
    """How to serve a model locally. ``replicas``, ``implementation`` and
    ``secret_name`` mean nothing on one machine; they are accepted, stored and shown so
    that a config written for a cluster flavor deploys here unchanged."""

    replicas: int = Field(default=1, ge=1, description="Cluster flavors: number of replicas.")
    implementation: str = Field(default="", description="Cluster flavors: server image kind.")
    secret_name: str = Field(default="", description="Cluster flavors: credentials secret.")
    workers: int | None = Field(
        default=None, ge=1, description="Worker processes; default: the deployer's setting."
    )
    host: str | None = Field(default=None, description="Interface to bind; default 127.0.0.1.")
    port: int | None = Field(default=None, ge=1, le=65535, description="HTTP port; default free.")
    grpc_port: int | None = Field(default=None, ge=1, le=65535, description="gRPC port.")
    trusted: bool = Field(
        default=False,
        description="Trust the model's code: a pickle/joblib model from a remote URI loads.",
    )
    sha256: str | None = Field(
        default=None,
        description="SHA-256 of the model's content, checked before loading (and trusting it).",
    )
    access_log: bool = Field(
        default=False, description="Log every request (method, path, status, latency)."
    )
    auth: bool = Field(
        default=True,
        description="Require a bearer token (generated per server, in a 0600 file of its "
        "run dir, sent by predict and the health checks); False: anyone who can reach the "
        "port may call it.",
    )

    @field_validator("model_name")
    @classmethod
    def _url_safe_name(cls, value: str) -> str:
        # The name is a segment of the prediction URL (/v2/models/{name}/infer): a '/'
        # or a space would give a server nobody can call.
        if value and not _MODEL_NAME.fullmatch(value):
            raise ValueError(
                "a model name may use letters, digits, '-', '_' and '.', and must start "
                f"with a letter or digit; got {value!r}"
            )
        return value

    @field_validator("model_uri")
    @classmethod
    def _absolute_local_paths(cls, value: str) -> str:
        # The server may start from another directory: a relative path must not drift.
        return absolute_model_path(value)


#: The docs' examples name a deployment config per flavor; this is the local one.
LocalDeploymentConfig = LocalModelServerConfig

#: Config fields a hot reload can change; any other change needs a restart.
_RELOADABLE = {
    "name",
    "description",
    "pipeline_name",
    "pipeline_step_name",
    "pipeline_run_id",
    "model_uri",
    "replicas",
    "implementation",
    "secret_name",
    "trusted",
    "sha256",
}

#: What only new processes change: a record follows them, never a reload or a reconcile.
PROCESS_FIELDS = ("workers", "host", "port", "grpc_port")


def reloadable(old: LocalModelServerConfig, new: LocalModelServerConfig) -> bool:
    """Whether ``new`` can be applied to a running server by a hot reload."""
    changed = {key for key in type(old).model_fields if getattr(old, key) != getattr(new, key)}
    return changed <= _RELOADABLE


def keeping_processes(current: _Config, config: dict[str, Any]) -> _Config:
    """``config`` (as recorded in a change) as ``current``'s class, with the process
    fields (ports, host, workers) kept as the running processes have them: only a restart
    changes those, and a restart is never left half-done in the record."""
    kept = {key: getattr(current, key) for key in PROCESS_FIELDS}
    return type(current).model_validate({**config, **kept})

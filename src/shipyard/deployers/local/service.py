"""LocalModelServer: ``python -m shipyard.serving`` as a managed background process.

Its config and which fields need new processes are in ``_config``; how the control plane
talks to the running supervisor (control socket, token file, reload) in ``_control``;
sending it data in ``deployers._predict``; replacing its processes rolling in ``_rolling``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from shipyard._redact import has_credentials
from shipyard.deployers._predict import predict_over_v2
from shipyard.deployers._token import bearer_headers
from shipyard.deployers._v2 import READY_PATH, infer_url, invocations_url, served_name
from shipyard.deployers.local._config import (
    LocalDeploymentConfig,
    LocalModelServerConfig,
    keeping_processes,
)
from shipyard.deployers.local._control import (
    TOKEN_FILE,
    keep_token_file,
    new_control_socket_path,
    remove_control_socket,
    send_reload,
    workers_ready,
)
from shipyard.deployers.local._snapshot import digest_in_path, snapshot_path
from shipyard.errors import ServiceError
from shipyard.secrets import has_references, reference_form
from shipyard.services import process
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.intent import ServedModel
from shipyard.services.local_daemon import LocalDaemonService
from shipyard.services.state import ServiceState
from shipyard.serving.fingerprint import model_fingerprint

__all__ = [
    "TOKEN_FILE",
    "LocalDeploymentConfig",
    "LocalModelServer",
    "LocalModelServerConfig",
    "model_fingerprint",
    "new_control_socket_path",
    "predict_over_v2",
    "remove_control_socket",
    "send_reload",
]


class LocalModelServer(LocalDaemonService):
    """One local model server: a supervisor with N workers on one HTTP and one gRPC port."""

    config: LocalModelServerConfig = Field(default_factory=LocalModelServerConfig)
    workers: int = 1
    grpc_port: int | None = None
    control_socket: str = ""
    #: The bearer-token file the server requires ('' when it requires none).
    auth_token_file: str = ""
    #: Fingerprint of the model files last deployed, so that a model saved again at the
    #: same path is deployed again: the SHA-256 of their contents when the model is
    #: pinned (``model_snapshot``), else their names, sizes and times.
    model_fingerprint: str = ""
    #: The private copy of the model this server loads (``_snapshot``): a restart serves
    #: what was deployed even if the user's folder was changed or moved since.
    model_snapshot: str = ""
    endpoint: ServiceEndpoint = Field(
        default_factory=lambda: ServiceEndpoint(health_check=HTTPHealthCheck(path=READY_PATH))
    )

    @property
    def served_name(self) -> str:
        return served_name(self.config.model_name)

    @property
    def prediction_url(self) -> str | None:
        return infer_url(self.endpoint.url, self.served_name)

    @property
    def invocations_url(self) -> str | None:
        return invocations_url(self.endpoint.url)

    def served_model_uri(self, config: LocalModelServerConfig) -> str:
        """The URI the server process loads for ``config``: its pinned copy, if any (the
        deployer sets ``model_snapshot`` before it starts or reloads)."""
        return self.model_snapshot or config.model_uri

    def _source_uri(self, digest: str) -> str | None:
        """Which model URI (the record's, or a change's target or previous one) the
        snapshot ``digest`` was made from; None if none of them."""
        candidates = [(self.config.model_uri, self.model_fingerprint)]
        if self.intent is not None:
            for config, fingerprint in (
                (self.intent.target, self.intent.target_fingerprint),
                (self.intent.previous, self.intent.previous_fingerprint),
            ):
                if config is not None:
                    candidates.append((str(config.get("model_uri", "")), fingerprint))
        return next((uri for uri, fingerprint in candidates if fingerprint == digest), None)

    def take_settings(self, config: LocalModelServerConfig, workers: int) -> Callable[[], None]:
        """Make ``config`` the record's, with the process settings it names (``workers``
        where it names none; a port or host it leaves out stays as it is); returns what
        puts the previous ones back (a restart with them failed: the old processes, on
        the old ports, keep serving)."""
        before = (self.config, self.workers, self.grpc_port, self.endpoint)
        self.config = config
        self.workers = config.workers or workers
        self.grpc_port = config.grpc_port or self.grpc_port
        self.endpoint = self.endpoint.model_copy(
            update={
                "port": config.port or self.endpoint.port,
                "host": config.host or self.endpoint.host,
            }
        )

        def restore() -> None:
            self.config, self.workers, self.grpc_port, self.endpoint = before

        return restore

    def _assign_ports(self) -> None:
        super()._assign_ports()
        if self.grpc_port is None:
            self.grpc_port = self.config.grpc_port or process.free_port(
                self.endpoint.host, exclude=self._ports()
            )

    def _ports(self) -> list[int]:
        ports = super()._ports()
        return ports if self.grpc_port is None else [*ports, self.grpc_port]

    def _socket_path(self) -> Path:
        if not self.control_socket:
            raise ServiceError(
                f"The model server {self.uuid} has no control socket: it was never started. "
                f"Start it with `shipyard model-deployer models start {self.uuid}`."
            )
        return Path(self.control_socket)

    def _new_socket_path(self) -> Path:
        """A control socket path that no other process (nor an earlier start of this
        server) ever uses: inside the run dir when short enough, else in a private
        directory of its own (0700, unique name) in the temp dir.

        Never reused across starts: a supervisor unlinks its socket when it exits, and a
        second supervisor started for the same server (two starts racing; the ports are
        shared through SO_REUSEPORT) replaces the socket of the first — with one fixed
        path per server, either takes the live server's control channel away."""
        remove_control_socket(self.control_socket)
        path = new_control_socket_path(self.run_path)
        self.control_socket = str(path)
        return path

    def command(self) -> list[str]:
        # A URI with credentials (or references to them) never goes into argv (anyone can
        # read it with `ps`): the server gets it from its environment (``environment``).
        model = (
            []
            if _needs_secrets(self.config.model_uri)
            else [
                self.served_model_uri(self.config),
                "--name",
                self.served_name,
                *(["--trust"] if self.config.trusted else []),
                *(["--sha256", self.config.sha256] if self.config.sha256 else []),
            ]
        )
        return [
            sys.executable,
            "-m",
            "shipyard.serving",
            *model,
            *self._auth_args(),
            "--host",
            self.endpoint.host,
            "--http-port",
            str(self.endpoint.port),
            "--grpc-port",
            str(self.grpc_port),
            "--workers",
            str(self.workers),
            "--control-socket",
            str(self._new_socket_path()),
            *(["--access-log"] if self.config.access_log else []),
        ]

    def _auth_args(self) -> list[str]:
        """``--auth-token-file`` with this server's token file (``keep_token_file``)."""
        self.auth_token_file = keep_token_file(self, self.config.auth)
        check = self.endpoint.health_check
        if isinstance(check, HTTPHealthCheck):
            check.token_file = self.auth_token_file
        return ["--auth-token-file", self.auth_token_file] if self.auth_token_file else []

    def request_headers(self) -> dict[str, str]:
        return bearer_headers(self.auth_token_file)

    def environment(self) -> dict[str, str]:
        env = super().environment()
        if _needs_secrets(self.config.model_uri):
            # Read by ServerConfig (pydantic-settings, prefix SHIPYARD_SERVER_). Only the
            # owner can read a process's environment (/proc/<pid>/environ is 0400).
            uri = self.resolve_secrets(self.served_model_uri(self.config))
            env["SHIPYARD_SERVER_MODELS"] = json.dumps(
                [
                    {
                        "uri": uri,
                        "name": self.served_name,
                        "trusted": self.config.trusted,
                        "sha256": self.config.sha256,
                    }
                ]
            )
        return env

    def delete(self, timeout: float = 60.0, force: bool = False) -> None:
        super().delete(timeout=timeout, force=force)
        remove_control_socket(self.control_socket)

    # -- in-place update -------------------------------------------------------------------

    def reload(self, config: LocalModelServerConfig, timeout: float) -> None:
        """Hot-swap the model: every worker loads and health-checks the new one first;
        on failure the old model keeps serving and DeploymentError names the cause.

        The deadline travels with the request: the supervisor abandons the reload (the
        old model keeps serving) once it passes, or as soon as this caller hangs up."""
        import time

        deadline = time.time() + timeout
        command = {
            "op": "reload",
            # Over the private control socket only; the server needs the credentials.
            "model_uri": self.resolve_secrets(self.served_model_uri(config)),
            "name": self.served_name,
            "deadline": deadline,
            "trust": {"trusted": config.trusted, "sha256": config.sha256},
        }
        # A little longer than the deadline: the supervisor's own "too late" answer is
        # worth waiting for, it tells what happened.
        answer = send_reload(
            self.uuid, self._socket_path(), command, timeout + 5.0, config.model_uri
        )
        served = _served_fingerprint(answer.get("models", []), self.served_model_uri(config))
        self.config = config
        self.model_fingerprint = (
            digest_in_path(self.model_snapshot) or served or (model_fingerprint(config.model_uri))
        )
        self.persist()

    # -- what it serves (``services.intent``) -----------------------------------------------

    REPORTS_SERVED_MODEL: ClassVar[bool] = True

    def served_model(self) -> ServedModel | None:
        """The model this server's supervisor serves under ``served_name`` (control
        ``status``); None when it is not running or does not answer."""
        from shipyard.serving.control import send_command

        if self.running_pid() is None or not self.control_socket:
            return None
        try:
            answer = send_command(self._socket_path(), {"op": "status"}, timeout=10.0)
        except ServiceError:
            return None
        for model in answer.get("models") or []:
            if model.get("name") == self.served_name and model.get("uri"):
                uri, fingerprint = str(model["uri"]), str(model.get("fingerprint") or "")
                digest = digest_in_path(uri)
                if digest:
                    # A pinned copy: it stands for the URI it was made from, and its
                    # content digest is the fingerprint the record keeps.
                    uri, fingerprint = self._source_uri(digest) or uri, digest
                return ServedModel(
                    # As the registry stores it: credentials as references, never values.
                    model_uri=reference_form(uri),
                    fingerprint=fingerprint,
                    changing=answer.get("reload") is not None,
                )
        return None

    def _fully_started(self) -> tuple[bool, str]:
        # Any ready worker answers the health check while others still load: a start is
        # over when the supervisor has every worker ready (until then a worker's death
        # is a failed start, and the whole server exits).
        if not self.control_socket:
            return True, ""
        return workers_ready(self.control_socket)

    def check_status(self) -> tuple[ServiceState, str]:
        from shipyard.deployers.local._rolling import abandon_next, retire_previous
        from shipyard.services.intent import intent_in_progress

        if self.intent is None or not intent_in_progress(self.intent):
            # A rolling replacement whose caller is gone: its half-started processes go,
            # or, if it got as far as switching, the old ones it had not stopped yet.
            abandon_next(self)
            retire_previous(self)
        state, error = super().check_status()
        if state == ServiceState.ERROR and self.running_pid() is not None and self.control_socket:
            # Unhealthy while running: the supervisor knows why (it gave up on a worker).
            cause = self._supervisor_error()
            if cause and cause not in error:
                self.status.update(state, f"the server is broken: {cause}")
                self.persist()
        return self.status.state, self.status.last_error

    def _supervisor_error(self) -> str:
        from shipyard.serving.control import send_command

        try:
            answer = send_command(self._socket_path(), {"op": "status"}, timeout=10.0)
        except ServiceError:
            return ""
        return str(answer.get("error") or "")

    def recorded_fingerprint(self) -> str:
        return self.model_fingerprint

    def apply_config(self, config: dict[str, Any], fingerprint: str = "") -> None:
        self.config = keeping_processes(self.config, config)
        self.model_fingerprint = fingerprint
        pinned = snapshot_path(fingerprint)
        self.model_snapshot = "" if pinned is None else str(pinned)

    # -- using it --------------------------------------------------------------------------

    def predict(self, data: Any) -> Any:
        """Send ``data`` to the server: a V2 request dict is sent as is (the answer dict
        comes back); rows (a list or array) become one FP64 tensor and the first output
        comes back as a numpy array; a DataFrame goes to ``/invocations``, its columns
        matched by name, and its predictions come back as a numpy array. Data that cannot
        be sent raises BadRequestError."""
        return predict_over_v2(self, data)


def _needs_secrets(uri: str) -> bool:
    """Whether ``uri`` carries credentials, or references to them, that argv must not."""
    return has_credentials(uri) or has_references(uri)


def _served_fingerprint(models: list[dict[str, Any]], uri: str) -> str:
    for model in models:
        if reference_form(str(model.get("uri"))) == uri and model.get("fingerprint"):
            return str(model["fingerprint"])
    return ""

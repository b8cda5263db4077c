"""LocalModelServer: ``python -m shipyard.serving`` as a managed background process."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from shipyard._redact import has_credentials
from shipyard.deployers.local._snapshot import digest_in_path, snapshot_path
from shipyard.errors import BadRequestError, DeploymentError, ServiceError
from shipyard.models._uri import is_local_uri
from shipyard.secrets import has_references, reference_form
from shipyard.services import process
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.intent import ServedModel
from shipyard.services.local_daemon import LocalDaemonService
from shipyard.services.service import Service, ServiceConfig
from shipyard.services.state import ServiceState
from shipyard.serving.fingerprint import model_fingerprint

__all__ = [
    "LocalDeploymentConfig",
    "LocalModelServer",
    "LocalModelServerConfig",
    "model_fingerprint",
    "new_control_socket_path",
    "predict_over_v2",
    "remove_control_socket",
    "send_reload",
]

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

#: Prefix of the private temp directory holding a control socket whose path in the run
#: dir would be too long.
_PRIVATE_DIR_PREFIX = "shipyard-ctl-"

#: The bearer token of a server that requires one, in its run dir (0600).
TOKEN_FILE = "auth-token"

# A Unix socket path must fit in sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


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
        # ("models:/iris/3" and other scheme URIs are not paths.)
        if value and is_local_uri(value) and not value.startswith(("/", "file://")):
            return str(Path(value).expanduser().resolve())
        return value


def remove_control_socket(path: str) -> None:
    """Remove the control socket of a server that no longer runs, and the private
    directory made for it (only that one: never a directory others may share)."""
    if not path:
        return
    socket_path = Path(path)
    socket_path.unlink(missing_ok=True)
    folder = socket_path.parent
    if folder.name.startswith(_PRIVATE_DIR_PREFIX) and folder.parent == Path(tempfile.gettempdir()):
        with contextlib.suppress(OSError):
            folder.rmdir()  # empty unless something else was put there: then it stays


def new_control_socket_path(run_path: Path, stem: str = "control") -> Path:
    """A fresh control socket path: in ``run_path`` when short enough, else in a private
    directory of its own (0700, unique name) in the temp dir."""
    name = f"{stem}-{secrets.token_hex(4)}.sock"
    path = run_path / name
    if len(str(path)) > _MAX_SOCKET_PATH:
        path = Path(tempfile.mkdtemp(prefix=_PRIVATE_DIR_PREFIX)) / name
    return path


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
        default_factory=lambda: ServiceEndpoint(
            health_check=HTTPHealthCheck(path="/v2/health/ready")
        )
    )

    @property
    def served_name(self) -> str:
        return self.config.model_name or "model"

    @property
    def prediction_url(self) -> str | None:
        base = self.endpoint.url
        return None if base is None else f"{base}/v2/models/{self.served_name}/infer"

    @property
    def invocations_url(self) -> str | None:
        base = self.endpoint.url
        return None if base is None else f"{base}/invocations"

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
        """``--auth-token-file`` with this server's token file, made on first use (kept
        across restarts, so a client's copy of the token stays valid)."""
        from shipyard.serving.auth import write_token_file

        check = self.endpoint.health_check
        if not self.config.auth:
            self.auth_token_file = ""
            if isinstance(check, HTTPHealthCheck):
                check.token_file = ""
            return []
        self._make_run_dir()
        path = self.run_path / TOKEN_FILE
        if not path.is_file() or not path.read_text().strip():
            write_token_file(path)
        self.auth_token_file = str(path)
        if isinstance(check, HTTPHealthCheck):
            check.token_file = str(path)
        return ["--auth-token-file", str(path)]

    def request_headers(self) -> dict[str, str]:
        if not self.auth_token_file:
            return {}
        from shipyard.serving.auth import read_token_file

        return {"authorization": f"Bearer {read_token_file(self.auth_token_file)}"}

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

    @staticmethod
    def reloadable(old: LocalModelServerConfig, new: LocalModelServerConfig) -> bool:
        """Whether ``new`` can be applied to a running server by a hot reload."""
        changed = {key for key in type(old).model_fields if getattr(old, key) != getattr(new, key)}
        return changed <= _RELOADABLE

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
        # Ports, host and workers are kept as the server runs them: only a restart
        # changes those, and a restart is never left half-done in the record.
        self.config = LocalModelServerConfig.model_validate(
            {
                **config,
                "workers": self.config.workers,
                "host": self.config.host,
                "port": self.config.port,
                "grpc_port": self.config.grpc_port,
            }
        )
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


def predict_over_v2(service: Service, data: Any) -> Any:
    """POST ``data`` to ``service`` (see ``LocalModelServer.predict``)."""
    import httpx
    import numpy as np

    raw = isinstance(data, dict)
    table = type(data).__name__ == "DataFrame"
    # A table goes to /invocations, where the server matches its columns by name.
    body = _table_body(data) if table else data if raw else {"inputs": [_rows_tensor(data)]}
    try:
        # JSON has no NaN or infinity: find them before anything is sent.
        content = json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise BadRequestError(
            f"The request cannot be sent as JSON ({err}); NaN, infinity and "
            "non-JSON values are not allowed."
        ) from err
    url = getattr(service, "invocations_url", None) if table else service.prediction_url
    if url is None or not service.is_running:
        raise ServiceError(
            f"The model server {service.uuid} is not running; start it with "
            f"`shipyard model-deployer models start {service.uuid}`."
        )
    try:
        response = httpx.post(
            url,
            content=content,
            headers={"content-type": "application/json", **service.request_headers()},
            timeout=60.0,
        )
    except httpx.HTTPError as err:
        raise ServiceError(f"POST {url} failed: {err}") from err
    if 400 <= response.status_code < 500:
        # The caller's data: the server's one-line reason, as a caller's mistake.
        try:
            reason = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            reason = response.text
        raise BadRequestError(f"The model server {service.uuid} refused the data: {reason}")
    if response.status_code != 200:
        raise ServiceError(f"POST {url} answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    if raw:
        return answer
    if table:
        return np.asarray(answer["predictions"])
    output = answer["outputs"][0]
    return np.asarray(output["data"]).reshape(output["shape"])


def _needs_secrets(uri: str) -> bool:
    """Whether ``uri`` carries credentials, or references to them, that argv must not."""
    return has_credentials(uri) or has_references(uri)


def _served_fingerprint(models: list[dict[str, Any]], uri: str) -> str:
    for model in models:
        if reference_form(str(model.get("uri"))) == uri and model.get("fingerprint"):
            return str(model["fingerprint"])
    return ""


def _table_body(frame: Any) -> dict[str, Any]:
    """A DataFrame as MLflow's ``dataframe_split``; missing values travel as null."""
    values = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return {"dataframe_split": {"columns": [str(c) for c in frame.columns], "data": values}}


def _rows_tensor(data: Any) -> dict[str, Any]:
    """Rows (a list of lists of numbers, or one row) as a V2 FP64 tensor named input-0."""
    import numpy as np

    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise BadRequestError(
            "The rows must be a rectangular list of numbers like [[1, 2, 3]] (or give a V2 "
            f'request {{"inputs": [...]}}); got {_preview(data)}: {err}'
        ) from err
    if array.ndim == 0 or array.size == 0:
        raise BadRequestError(
            "The rows must be a non-empty list of numbers like [[1, 2, 3]] (or give a V2 "
            f'request {{"inputs": [...]}}); got {_preview(data)}.'
        )
    if not np.isfinite(array).all():
        raise BadRequestError(
            "The rows contain null, NaN or infinity, which JSON cannot carry; "
            "replace them with numbers (impute missing values first)."
        )
    if array.ndim == 1:
        array = array.reshape(1, -1)
    return {
        "name": "input-0",
        "shape": list(array.shape),
        "datatype": "FP64",
        "data": array.ravel().tolist(),
    }


def _preview(data: Any, limit: int = 60) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def send_reload(
    uuid: str, socket_path: str | Path, command: dict[str, Any], timeout: float, target: str
) -> dict[str, Any]:
    """Send a ``reload`` to a server's control socket; its answer if the server took the
    new model (``target`` names it), else DeploymentError saying why (the previous model
    keeps serving: a reload switches only once everything has loaded)."""
    from shipyard.serving.control import send_command

    try:
        answer = send_command(socket_path, command, timeout)
    except ServiceError as err:
        raise DeploymentError(
            f"Could not update the model server {uuid} to {target}: {err}"
        ) from err
    if not answer.get("ok"):
        raise DeploymentError(
            f"The model server {uuid} rejected the new model {target}: "
            f"{answer.get('error', 'no reason given')}. The previous model keeps serving."
        )
    return answer

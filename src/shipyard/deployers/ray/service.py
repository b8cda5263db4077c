"""RayModelServer: one Ray Serve application per Service, its state read from Serve.

The desired state is ``admin_state``; the observed one comes from Serve's application
status on every check (RUNNING and answering its health check = active; DEPLOYING =
pending startup; UNHEALTHY or DEPLOY_FAILED = error with Serve's message; gone while it
should run = error), so an application deleted behind the registry's back shows up as such.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shipyard.deployers._predict import predict_over_v2
from shipyard.deployers._token import bearer_headers, ensure_token_file
from shipyard.deployers._v2 import READY_PATH, infer_url, invocations_url, served_name
from shipyard.deployers.local._config import LocalModelServerConfig
from shipyard.errors import DeploymentError
from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint
from shipyard.services.service import Service
from shipyard.services.state import ServiceState

__all__ = ["RayActorOptions", "RayDeploymentConfig", "RayModelServer"]

_POLL_S = 0.5


class RayActorOptions(BaseModel):
    """What each replica reserves on the cluster (Ray's ``ray_actor_options``)."""

    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(default=1.0, ge=0, description="CPUs per replica.")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs per replica.")
    memory: int | None = Field(default=None, ge=0, description="Bytes of memory per replica.")


class RayDeploymentConfig(LocalModelServerConfig):
    """How to serve a model on Ray Serve. The local-only keys (``workers``, ``host``,
    ``port``, ``grpc_port``) are accepted so one config deploys on either flavor; on Ray
    the replicas, not worker processes, scale it."""

    num_replicas: int | None = Field(
        default=None, ge=1, description="Fixed replica count; default 1 (or autoscaling)."
    )
    autoscaling_config: dict[str, Any] | None = Field(
        default=None,
        description="Serve's autoscaling (min_replicas, max_replicas, "
        "target_ongoing_requests, ...); instead of num_replicas.",
    )
    ray_actor_options: RayActorOptions = Field(
        default_factory=RayActorOptions, description="Resources each replica reserves."
    )
    max_ongoing_requests: int = Field(
        default=128,
        ge=1,
        description="Requests one replica takes at once; many, so that batches can form.",
    )
    route_prefix: str | None = Field(
        default=None, description="URL prefix of the application; default /<app name>."
    )
    max_constructor_retry_count: int = Field(
        default=3, ge=1, description="Failed replica starts before the deploy has failed."
    )
    max_batch_size: int = Field(default=1024, ge=1, description="Rows per merged predict call.")
    max_batch_delay: float = Field(
        default=0.002, ge=0, le=10, description="Seconds a batch may wait for more requests."
    )

    def replica_count(self) -> int:
        # ``replicas`` is the cluster-flavor key every config carries (default 1).
        return self.num_replicas or self.replicas

    def serve_options(self) -> dict[str, Any]:
        """The deployment options given to Serve."""
        actor: dict[str, Any] = self.ray_actor_options.model_dump(exclude_none=True)
        options: dict[str, Any] = {
            "ray_actor_options": actor,
            "max_ongoing_requests": self.max_ongoing_requests,
            # New replicas start beside the old ones, which serve until the new are
            # ready; a new model that fails to load leaves the old replicas serving.
            "max_surge_percent": 100,
            # A few failed starts make the update DEPLOY_FAILED (Serve's default, 20,
            # keeps a broken model retrying for minutes).
            "max_constructor_retry_count": self.max_constructor_retry_count,
            "health_check_period_s": 2.0,
        }
        if self.autoscaling_config is not None:
            if self.num_replicas is not None:
                raise DeploymentError("Give either num_replicas or autoscaling_config, not both.")
            options["autoscaling_config"] = self.autoscaling_config
        else:
            options["num_replicas"] = self.replica_count()
        return options


class RayModelServer(Service):
    """A model served by a Ray Serve application on a Ray cluster."""

    config: RayDeploymentConfig
    address: str = Field(default="", description="The Ray cluster the application runs on.")
    app_name: str = ""
    route_prefix: str = ""
    endpoint: ServiceEndpoint = Field(
        default_factory=lambda: ServiceEndpoint(health_check=HTTPHealthCheck(path=READY_PATH))
    )
    #: Serve's HTTP proxy settings used when Shipyard starts Serve on the cluster.
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    proxy_location: str = "HeadOnly"
    #: Serve's gRPC proxy port used when Shipyard starts Serve (None: no gRPC proxy).
    grpc_port: int | None = None
    #: The bearer-token file of the service (0600, in SHIPYARD_HOME; '' when ``auth`` is
    #: off): the replicas get the token through the cluster's secrets, clients from here.
    auth_token_file: str = ""
    grpc_address: str | None = Field(
        default=None,
        description="host:port of Serve's gRPC proxy carrying inference.GRPCInferenceService "
        "(call with the metadata application=<app_name>); None when Serve runs without it.",
    )

    @property
    def served_name(self) -> str:
        return served_name(self.config.model_name)

    @property
    def base_url(self) -> str | None:
        base = self.endpoint.url
        return None if base is None else f"{base}{self.route_prefix}"

    @property
    def prediction_url(self) -> str | None:
        return infer_url(self.base_url, self.served_name)

    @property
    def invocations_url(self) -> str | None:
        return invocations_url(self.base_url)

    # -- talking to Serve --------------------------------------------------------------

    def _connect(self) -> None:
        from shipyard._ray.connect import connect, ensure_serve

        connect(self.address)
        proxies = ensure_serve(self.http_host, self.http_port, self.proxy_location, self.grpc_port)
        host, port = proxies.host, proxies.http_port
        grpc = None if proxies.grpc_port is None else f"{host}:{proxies.grpc_port}"
        if grpc != self.grpc_address:
            self.grpc_address = grpc
        if (self.endpoint.host, self.endpoint.port) != (host, port):
            self.endpoint = self.endpoint.model_copy(update={"host": host, "port": port})
            self.endpoint.health_check = HTTPHealthCheck(path=f"{self.route_prefix}{READY_PATH}")

    # -- credentials -------------------------------------------------------------------

    def _token(self) -> str | None:
        """The service's bearer token (made on first use, kept across redeploys so a
        client's copy stays valid); None when ``auth`` is off."""
        check = self.endpoint.health_check
        if not self.config.auth:
            self.auth_token_file = ""
            return None
        if not self.auth_token_file:
            from shipyard.config import get_settings

            folder = get_settings().home / "ray" / "tokens"
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.auth_token_file = str(folder / self.uuid)
        token = ensure_token_file(Path(self.auth_token_file))
        if isinstance(check, HTTPHealthCheck):
            check.token_file = self.auth_token_file
        return token

    def request_headers(self) -> dict[str, str]:
        return bearer_headers(self.auth_token_file)

    def _hand_secrets(self, config: RayDeploymentConfig) -> tuple[str | None, dict[str, Any]]:
        """Put the values the replicas need (the model URI's credentials, the token) into
        the cluster's secrets under this application; (their scope, the trust options).

        An allow-listed URI (``SHIPYARD_TRUSTED_MODEL_URIS``) is the caller's decision,
        made here: the replicas' environment is the cluster's, not the caller's."""
        from shipyard._ray.secrets import put_secrets, secret_values
        from shipyard.config import get_settings
        from shipyard.deployers.ray.replica import TOKEN_SECRET
        from shipyard.models._trust import allow_listed

        values = secret_values([config.model_uri], self.resolve_secrets)
        token = self._token()
        if token is not None:
            values[TOKEN_SECRET] = token
        if values:
            put_secrets(self.app_name, values)
        trusted = config.trusted or allow_listed(
            config.model_uri, get_settings().trusted_model_uris
        )
        return (self.app_name if values else None), {
            "trusted": trusted,
            "sha256": config.sha256,
        }

    def serve_status(self) -> tuple[str, str] | None:
        """(Serve's application status, its message), or None if there is no application."""
        found = self._serve_app()
        return None if found is None else (found[0], found[1])

    def _serve_app(self) -> tuple[str, str, float] | None:
        """(status, message, when it was last deployed) of the application, if any."""
        from ray import serve

        self._connect()
        app = serve.status().applications.get(self.app_name)
        if app is None:
            return None
        message = app.message
        for name, deployment in app.deployments.items():
            if deployment.message and deployment.message not in message:
                message = f"{message} {name}: {deployment.message}".strip()
        return str(app.status.value), message, float(app.last_deployed_time_s)

    def check_status(self) -> tuple[ServiceState, str]:
        before = self.model_dump_json()
        try:
            found = self.serve_status()
        except DeploymentError as err:
            self.status.update(ServiceState.ERROR, str(err))
            found = ("", "")
        if found is None:
            if self.admin_state == ServiceState.ACTIVE:
                self.status.update(
                    ServiceState.ERROR,
                    f"the Serve application '{self.app_name}' is gone from the cluster; "
                    f"start it again with `shipyard model-deployer models start {self.uuid}`.",
                )
            else:
                self.status.update(ServiceState.INACTIVE)
        elif found[0]:
            self._observe(*found)
        if self.model_dump_json() != before:
            self.persist()
        return self.status.state, self.status.last_error

    def _observe(self, status: str, message: str) -> None:
        if status == "RUNNING":
            healthy, why = self.endpoint.check()
            if healthy:
                self.status.update(ServiceState.ACTIVE)
            else:
                self.status.update(ServiceState.ERROR, f"running but unhealthy: {why}")
        elif status in ("DEPLOYING", "NOT_STARTED"):
            self.status.update(ServiceState.PENDING_STARTUP)
        elif status == "DELETING":
            self.status.update(ServiceState.PENDING_SHUTDOWN)
        else:  # UNHEALTHY, DEPLOY_FAILED
            self.status.update(ServiceState.ERROR, f"Serve says {status}: {message}")

    # -- lifecycle ---------------------------------------------------------------------

    def deploy(self, timeout: float) -> None:
        """Run (or update in place: Serve's rolling update, same route) the application
        and wait until it runs. DeploymentError with Serve's message if it fails."""
        from ray import serve

        from shipyard.deployers.ray.replica import build_application

        # Serve started first with our proxy settings (run_many would start it on 8000).
        self._connect()
        config = self.config
        scope, trust = self._hand_secrets(config)
        app = build_application(
            model_uri=config.model_uri,  # references only: the values are in ``scope``
            model_name=self.served_name,
            batching={
                "max_batch_size": config.max_batch_size,
                "max_batch_delay": config.max_batch_delay,
            },
            options=config.serve_options(),
            trust=trust,
            secrets_scope=scope,
            auth=config.auth,
        )
        serve.run_many(
            [serve.RunTarget(app, name=self.app_name, route_prefix=self.route_prefix)],
            wait_for_applications_running=False,
        )
        self.status.update(ServiceState.PENDING_STARTUP)
        self.persist()
        self._wait_running(timeout)

    def _wait_running(self, timeout: float) -> None:
        """Until the application runs and answers, or fails. (Serve marks it DEPLOYING
        before ``run_many`` returns, so a RUNNING seen here is the new version's.)"""
        deadline = time.monotonic() + timeout
        last = ("", "")
        while time.monotonic() < deadline:
            found = self._serve_app()
            if found is not None:
                last = (found[0], found[1])
                if found[0] == "RUNNING" and self.endpoint.check()[0]:
                    self.status.update(ServiceState.ACTIVE)
                    self.persist()
                    return
                if found[0] in ("DEPLOY_FAILED", "UNHEALTHY"):
                    break
            time.sleep(_POLL_S)
        status, message = last
        if status == "DEPLOYING":
            message = f"still DEPLOYING after {timeout:.0f}s ({message or 'no message'})"
        error = f"Serve application '{self.app_name}': {status or 'missing'}: {message}"
        self.status.update(ServiceState.ERROR, error)
        self.persist()
        raise DeploymentError(error)

    def start(self, timeout: float = 300.0) -> None:
        self.admin_state = ServiceState.ACTIVE
        self.deploy(timeout)

    def stop(self, timeout: float = 60.0, force: bool = False) -> None:
        """Delete the Serve application (its replicas finish in-flight requests first)."""
        from ray import serve

        self.admin_state = ServiceState.INACTIVE
        self._connect()
        if self.serve_status() is not None:
            self.status.update(ServiceState.PENDING_SHUTDOWN)
            self.persist()
            serve.delete(self.app_name)
        from shipyard._ray.secrets import drop_secrets

        drop_secrets(self.app_name)
        self.status.update(ServiceState.INACTIVE)
        self.persist()

    def delete(self, timeout: float = 60.0, force: bool = False) -> None:
        super().delete(timeout=timeout, force=force)
        if self.auth_token_file:
            Path(self.auth_token_file).unlink(missing_ok=True)

    def get_logs(self, follow: bool = False, tail: int | None = None) -> Generator[str, None, None]:
        """The replicas' log files, read on every node of the cluster."""
        from shipyard.deployers.ray._logs import replica_logs

        self._connect()
        yield from replica_logs(self.app_name, tail)

    def predict(self, data: Any) -> Any:
        """As ``LocalModelServer.predict``: rows or a V2 request, sent to the route."""
        return predict_over_v2(self, data)

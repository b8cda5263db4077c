"""KubernetesModelService: a model server that is one custom resource in a cluster.

The resource is the desired state: the spec says what should run, the operator's status
says what does. ``check_status`` reads the resource and maps its status to ours; there is
no process of our own to watch, and nothing to reconcile beyond what the cluster does.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr

from shipyard.deployers._kubernetes._client import (
    CustomResource,
    KubernetesClient,
    KubernetesError,
)
from shipyard.deployers._kubernetes._config import ClusterAccess
from shipyard.deployers._kubernetes._labels import annotations_of
from shipyard.deployers._v2 import infer_url
from shipyard.errors import DeploymentError, ServiceError
from shipyard.services.service import Service
from shipyard.services.state import ServiceState

__all__ = ["KubernetesModelService", "Observation"]

#: Seconds between two reads of a resource while waiting for the operator.
POLL_INTERVAL = 0.5


class Observation:
    """What one read of the resource says: state, error (or None), URL."""

    def __init__(self, state: ServiceState, error: str | None = None, url: str = "") -> None:
        self.state = state
        self.error = error
        self.url = url


class KubernetesModelService(Service):
    """Base of the KServe and Seldon services; a flavor says how to read its status."""

    RESOURCE: ClassVar[CustomResource]
    #: Whether the operator reports ``status.observedGeneration`` (KServe does, Seldon not).
    TRACKS_GENERATION: ClassVar[bool] = True
    #: Set by ``stop`` (its presence: stopped), holding what ``start`` restores.
    STOPPED_ANNOTATION: ClassVar[str]

    cluster: ClusterAccess = Field(default_factory=ClusterAccess)
    resource_name: str = Field(default="", description="Name of the resource in the cluster.")
    base_url: str = Field(default="", description="Ingress base URL (the deployer's base_url).")
    storage_uri: str = Field(default="", description="Where the pods download the model.")
    url: str = Field(default="", description="The URL the operator reported, last seen.")
    #: The served model's name in V2 paths (/v2/models/{name}/infer).
    served_name: str = ""
    secret: str = Field(
        default="",
        description="The pods' Kubernetes Secret (token, credentials): its name only.",
    )
    model_trusted: bool = Field(
        default=False, description="Whether the pods' loader was told to trust the model."
    )

    _client: KubernetesClient | None = PrivateAttr(default=None)

    # -- the cluster ---------------------------------------------------------------------

    def client(self) -> KubernetesClient:
        if self._client is None:
            self._client = KubernetesClient(self.cluster)
        return self._client

    def use_client(self, client: KubernetesClient) -> None:
        """Share a deployer's client (one connection pool, one configuration)."""
        self._client = client

    def fetch(self) -> dict[str, Any] | None:
        return self.client().get(self.RESOURCE, self.resource_name)

    def patch(self, patch: dict[str, Any]) -> dict[str, Any]:
        return self.client().patch(self.RESOURCE, self.resource_name, patch)

    # -- what a flavor implements --------------------------------------------------------

    def observe(self, resource: dict[str, Any]) -> Observation:
        """Map the resource's status to ours."""
        raise NotImplementedError

    # -- status --------------------------------------------------------------------------

    def check_status(self) -> tuple[ServiceState, str]:
        try:
            resource = self.fetch()
        except KubernetesError as err:
            # The cluster could not be asked: what it runs is unknown, not failed.
            if self.status.update(self.status.state, str(err)):
                self.persist()
            return self.status.state, self.status.last_error
        if resource is None:
            seen = Observation(
                ServiceState.INACTIVE
                if self.admin_state == ServiceState.INACTIVE
                else ServiceState.ERROR,
                f"The {self.RESOURCE.kind} '{self.resource_name}' is gone from namespace "
                f"'{self.cluster.namespace}'; deploy the model again.",
            )
        else:
            seen = self.observe(resource)
        changed = self.status.update(seen.state, seen.error)
        if seen.url and seen.url != self.url:
            self.url = seen.url
            changed = True
        if changed:
            self.persist()
        return self.status.state, self.status.last_error

    def wait_for(self, done: Any, timeout: float, what: str) -> Observation:
        """Read the resource until ``done(resource, observation)`` holds or it failed.

        Raises DeploymentError on failure (the operator's reason) or at the deadline.
        """
        deadline = time.monotonic() + timeout
        while True:
            resource = self.fetch()
            if resource is None:
                raise DeploymentError(
                    f"The {self.RESOURCE.kind} '{self.resource_name}' disappeared while "
                    f"waiting for {what}."
                )
            seen = self.observe(resource)
            if done(resource, seen):
                return seen
            if seen.state == ServiceState.ERROR:
                raise DeploymentError(
                    f"The model server {self.uuid} ({self.RESOURCE.kind} "
                    f"'{self.resource_name}') failed while waiting for {what}: {seen.error}"
                )
            if time.monotonic() >= deadline:
                raise DeploymentError(
                    f"The model server {self.uuid} ({self.RESOURCE.kind} "
                    f"'{self.resource_name}') was not {what} after {timeout:g} s "
                    f"({seen.error or seen.state.value}). It stays as the cluster has it; "
                    f"see `shipyard model-deployer models describe {self.uuid}`."
                )
            time.sleep(POLL_INTERVAL)

    # -- addresses -----------------------------------------------------------------------

    def route(self) -> str:
        """Path of the model below the ingress (a flavor may prefix it)."""
        return ""

    @property
    def host_header(self) -> str | None:
        """The ``Host`` an ingress routes on, when requests go through ``base_url``."""
        if not self.base_url or not self.url:
            return None
        return urlsplit(self.url).netloc or None

    @property
    def endpoint_url(self) -> str | None:
        """Where requests go: the ingress base URL (with a route), else the status URL."""
        if self.base_url:
            return f"{self.base_url}{self.route()}"
        return self.url.rstrip("/") or None

    @property
    def prediction_url(self) -> str | None:
        base = self.endpoint_url
        return infer_url(base, self.served_name)

    # -- lifecycle -----------------------------------------------------------------------

    def stop_patch(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The patch that stops the model, keeping the resource, and records in
        ``STOPPED_ANNOTATION`` what ``start_patch`` restores (a flavor's)."""
        raise NotImplementedError

    def start_patch(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """The patch that undoes ``stop_patch`` (None: nothing to undo) (a flavor's)."""
        raise NotImplementedError

    def stop(self, timeout: float = 60.0, force: bool = False) -> None:
        """Stop serving, keeping the resource (``stop_patch``); stopping twice is a no-op."""
        resource = self.fetch()
        if resource is not None and not annotations_of(resource).get(self.STOPPED_ANNOTATION):
            self.patch(self.stop_patch(resource))
        self.admin_state = ServiceState.INACTIVE
        self.check_status()

    def start(self, timeout: float = 60.0) -> None:
        """Undo ``stop`` (``start_patch``) and wait until the operator reports the model
        ready."""
        resource = self.fetch()
        patch = None if resource is None else self.start_patch(resource)
        if patch is not None:
            self.patch(patch)
        self.admin_state = ServiceState.ACTIVE
        self.persist()
        self.wait_for(lambda _, seen: seen.state == ServiceState.ACTIVE, timeout, "ready")
        self.check_status()

    def delete(self, timeout: float = 60.0, force: bool = False) -> None:
        """Delete the resource; the operator removes its pods."""
        self.client().delete(self.RESOURCE, self.resource_name)
        if self.secret:
            # Owned by the resource (the cluster's garbage collector would delete it too):
            # deleted here so nothing of the server is left once `delete` returns.
            self.client().delete_secret(self.secret)
        self.admin_state = ServiceState.INACTIVE
        self.status.update(ServiceState.INACTIVE)

    def get_logs(self, follow: bool = False, tail: int | None = None) -> Any:
        raise ServiceError(
            f"The model server {self.uuid} runs in a cluster; read its pods' logs with "
            f"`kubectl logs -n {self.cluster.namespace} -l {self.log_selector()}"
            f"{' -f' if follow else ''}`."
        )

    def log_selector(self) -> str:
        raise NotImplementedError

    # -- using it --------------------------------------------------------------------------

    def request_headers(self) -> dict[str, str]:
        """``Authorization`` with the pods' bearer token, read from their Secret (never
        stored in the registry); empty when the pods need none."""
        from shipyard.deployers._kubernetes._secrets import TOKEN_KEY, decoded

        if not self.secret or not getattr(self.config, "auth", False):
            return {}
        token = decoded(self.client().get_secret(self.secret), TOKEN_KEY)
        return {"authorization": f"Bearer {token}"} if token else {}

    def predict(self, data: Any) -> Any:
        """Send ``data`` (a V2 request dict, or rows) to the model through the ingress."""
        import numpy as np

        from shipyard.deployers._predict import post_json, rows_tensor

        raw = isinstance(data, dict)
        body = data if raw else {"inputs": [rows_tensor(data)]}
        url = self.prediction_url
        response = post_json(
            self,
            url,
            body,
            unreachable=f"The model server {self.uuid} has no URL yet (the operator has not "
            "reported one); check it with `shipyard model-deployer models describe`.",
            headers={"host": self.host_header} if self.host_header else None,
        )
        if response.status_code != 200:
            raise ServiceError(f"POST {url} answered {response.status_code}: {response.text}")
        answer: dict[str, Any] = response.json()
        if raw:
            return answer
        output = answer["outputs"][0]
        return np.asarray(output["data"]).reshape(output["shape"])

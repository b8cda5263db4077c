"""Custom resources through the official ``kubernetes`` client, with errors people can act on.

Only the client's ``CustomObjectsApi`` is used: it sends and returns plain dicts, so the
manifests we validate against the CRD schemas are exactly what goes on the wire (the
``kserve`` SDK's models serialise with snake_case keys and nulls under ``kubernetes`` 37).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shipyard.deployers._kubernetes._config import ClusterAccess
from shipyard.errors import (
    ConfigError,
    MissingDependencyError,
    NotFoundError,
    ServiceError,
    ShipyardError,
)

__all__ = [
    "CustomResource",
    "KubernetesClient",
    "KubernetesConflictError",
    "KubernetesError",
    "KubernetesForbiddenError",
    "KubernetesInvalidError",
    "ResourceTypeNotFoundError",
]


class KubernetesError(ServiceError):
    """The Kubernetes API could not be reached or refused a request."""


class KubernetesForbiddenError(KubernetesError):
    """RBAC (or authentication) refused the request."""

    status_code = 403


class KubernetesConflictError(KubernetesError):
    """The resource exists already, or changed under us."""

    status_code = 409


class KubernetesInvalidError(KubernetesError):
    """The API server refused the manifest (HTTP 422); the message names the fields."""

    status_code = 422


class ResourceTypeNotFoundError(KubernetesError, NotFoundError):
    """The cluster does not know the resource type: the operator's CRDs are not installed."""

    status_code = 404


@dataclass(frozen=True)
class CustomResource:
    """A custom resource type, e.g. ``serving.kserve.io/v1beta1`` ``inferenceservices``."""

    group: str
    version: str
    plural: str
    kind: str
    #: The project users install to get it, named in errors.
    operator: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


class KubernetesClient:
    """One cluster, one namespace; every call returns plain dicts or raises a KubernetesError."""

    def __init__(self, access: ClusterAccess) -> None:
        self.access = access
        self._api: Any = None
        self.host = ""

    @property
    def namespace(self) -> str:
        return self.access.namespace

    def _objects(self) -> Any:
        if self._api is not None:
            return self._api
        try:
            from kubernetes import client, config
        except ImportError as err:
            raise MissingDependencyError("kubernetes", "kubernetes", "Kubernetes flavors") from err
        try:
            if self.access.in_cluster:
                configuration = client.Configuration()
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
                api_client = client.ApiClient(configuration)
            else:
                api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=self.access.config_file, context=self.access.context
                )
        except config.ConfigException as err:
            where = (
                "the pod's service account"
                if self.access.in_cluster
                else f"kubeconfig context '{self.access.context or '(current)'}'"
            )
            raise ConfigError(
                f"Cannot configure the Kubernetes client from {where}: {err}. Check "
                "`kubectl config get-contexts` and the model deployer's "
                "--kubernetes_context (or --in_cluster inside a pod)."
            ) from err
        self.host = str(api_client.configuration.host)
        self._api = client.CustomObjectsApi(api_client)
        return self._api

    # -- the calls -----------------------------------------------------------------------

    def get(self, kind: CustomResource, name: str) -> dict[str, Any] | None:
        """The resource, or ``None`` if it does not exist."""
        try:
            return self._call("get", kind, name, None)
        except NotFoundError:
            return None

    def create(self, kind: CustomResource, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("create", kind, body["metadata"]["name"], body)

    def patch(self, kind: CustomResource, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386): ``None`` removes a key, lists are replaced."""
        return self._call("patch", kind, name, patch)

    def delete(self, kind: CustomResource, name: str) -> bool:
        """Delete the resource; ``False`` if it was already gone."""
        try:
            self._call("delete", kind, name, None)
        except NotFoundError:
            return False
        return True

    def list(self, kind: CustomResource, label_selector: str = "") -> list[dict[str, Any]]:
        answer = self._call("list", kind, "", {"label_selector": label_selector})
        items: list[dict[str, Any]] = answer.get("items", [])
        return items

    def apply_service_account(self, body: dict[str, Any]) -> None:
        """Create the ServiceAccount ``body``, or patch it to ``body`` when it exists."""
        self._objects()
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self._api.api_client)
        name = body["metadata"]["name"]
        account = CustomResource("", "v1", "serviceaccounts", "ServiceAccount", "Kubernetes")
        try:
            try:
                core.read_namespaced_service_account(name, self.namespace)
            except ApiException as err:
                if err.status != 404:
                    raise
                # The client takes plain dicts as bodies (as for custom objects).
                core.create_namespaced_service_account(self.namespace, body)  # type: ignore[arg-type]
            else:
                core.patch_namespaced_service_account(name, self.namespace, body)
        except ApiException as err:
            raise self._explain(err, "apply", account, name) from err

    # -- Secrets (the core API): a model server's token and credentials ------------------

    def _core(self) -> Any:
        self._objects()
        from kubernetes import client

        return client.CoreV1Api(self._api.api_client)

    def get_secret(self, name: str) -> dict[str, Any] | None:
        """The Secret as a plain dict (``data`` base64), or ``None`` if there is none."""
        return self._core_call("get", name, None)

    def apply_secret(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the Secret ``body``, or patch the existing one to ``body``'s data (keys
        it no longer has removed), labels and ``ownerReferences`` (kept if it has none)."""
        name = body["metadata"]["name"]
        current = self.get_secret(name)
        if current is None:
            return self._core_call("create", name, body) or {}
        data: dict[str, Any] = {key: None for key in current.get("data") or {}}
        data.update(body.get("data") or {})
        patch: dict[str, Any] = {"metadata": {"labels": body["metadata"].get("labels") or {}}}
        if body["metadata"].get("ownerReferences"):
            patch["metadata"]["ownerReferences"] = body["metadata"]["ownerReferences"]
        patch["data"] = data
        return self._core_call("patch", name, patch) or {}

    def delete_secret(self, name: str) -> bool:
        """Delete the Secret; ``False`` if it was already gone."""
        return self._core_call("delete", name, None) is not None

    def _core_call(
        self, verb: str, name: str, body: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """One Secret call; ``None`` for a Secret that is not there (get, delete)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        core = self._core()
        kind = CustomResource("", "v1", "secrets", "Secret", "Kubernetes")
        try:
            if verb == "get":
                result = core.read_namespaced_secret(name, self.namespace)
            elif verb == "create":
                result = core.create_namespaced_secret(self.namespace, body)
            elif verb == "patch":
                result = core.patch_namespaced_secret(name, self.namespace, body)
            else:
                result = core.delete_namespaced_secret(name, self.namespace)
        except ApiException as err:
            if err.status == 404 and verb in ("get", "delete"):
                return None
            raise self._explain(err, verb, kind, name) from err
        except HTTPError as err:
            raise KubernetesError(
                f"Cannot reach the Kubernetes API at {self.host or '(unknown host)'} "
                f"({verb} Secret '{name}'): {err}."
            ) from err
        found = core.api_client.sanitize_for_serialization(result)
        return found if isinstance(found, dict) else {}

    def _call(
        self, verb: str, kind: CustomResource, name: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        api = self._objects()
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        group, version, plural = kind.group, kind.version, kind.plural
        scope: tuple[str, ...] = (
            (group, version, self.namespace, plural)
            if kind.namespaced
            else (group, version, plural)
        )
        suffix = "namespaced_custom_object" if kind.namespaced else "cluster_custom_object"
        try:
            if verb == "get":
                result = getattr(api, f"get_{suffix}")(*scope, name)
            elif verb == "create":
                # Strict: a field the CRD does not declare is refused, not silently pruned.
                result = getattr(api, f"create_{suffix}")(*scope, body, field_validation="Strict")
            elif verb == "patch":
                result = getattr(api, f"patch_{suffix}")(
                    *scope, name, body, field_validation="Strict"
                )
            elif verb == "delete":
                result = getattr(api, f"delete_{suffix}")(*scope, name)
            else:
                result = getattr(api, f"list_{suffix}")(*scope, **(body or {}))
        except ApiException as err:
            raise self._explain(err, verb, kind, name) from err
        except HTTPError as err:
            raise KubernetesError(
                f"Cannot reach the Kubernetes API at {self.host or '(unknown host)'} "
                f"({verb} {kind.kind} '{name}'): {err}. Is the cluster up, and is the "
                "model deployer's --kubernetes_context the right one?"
            ) from err
        return result if isinstance(result, dict) else {}

    def _explain(self, err: Any, verb: str, kind: CustomResource, name: str) -> ShipyardError:
        status = int(err.status or 0)
        detail = _status_message(err.body) or str(err.reason or "")
        what = f"{kind.kind} '{name}'" if name else f"{kind.kind} resources"
        where = f"namespace '{self.namespace}'" if kind.namespaced else "the cluster"
        if status in (401, 403):
            return KubernetesForbiddenError(
                f"The Kubernetes API refused to {verb} the {what} in {where} ({status}: "
                f"{detail}). Grant the account of context "
                f"'{self.access.context or '(current)'}' the verbs get, list, create, patch "
                f"and delete on {kind.crd_name} (a Role and RoleBinding in {where})."
            )
        if status == 404:
            if verb in ("create", "list"):
                return ResourceTypeNotFoundError(
                    f"The cluster does not know {kind.crd_name} ({detail}): install "
                    f"{kind.operator} (its CRDs), or pick the cluster that has it with "
                    "--kubernetes_context."
                )
            return NotFoundError(f"The {what} does not exist in {where}.")
        if status == 409:
            return KubernetesConflictError(
                f"Could not {verb} the {what} in {where}: {detail}. Another resource of "
                "that name exists (delete it, or deploy under another model name), or it "
                "changed meanwhile (run the command again)."
            )
        if status == 422:
            return KubernetesInvalidError(
                f"The cluster refused the {what}: {_causes(err.body) or detail}. This is a "
                "bug in Shipyard's manifest or a field the cluster's operator version does "
                "not accept; `shipyard deploy ... --dry-run` prints the manifest."
            )
        return KubernetesError(
            f"The Kubernetes API answered {status} to {verb} the {what} in {where}: {detail}"
        )


def _status(body: Any) -> dict[str, Any]:
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _status_message(body: Any) -> str:
    return str(_status(body).get("message", ""))


def _causes(body: Any) -> str:
    """``spec.x: message; spec.y: message`` from a 422 Status' details.causes."""
    causes = (_status(body).get("details") or {}).get("causes") or []
    return "; ".join(
        f"{cause.get('field', '?')}: {cause.get('message', cause.get('reason', ''))}"
        for cause in causes
        if isinstance(cause, dict)
    )

"""What every Kubernetes model deployer is configured with: the cluster and the model store.

The keys are the seed's (ZenML's): ``--kubernetes_context``, ``--kubernetes_namespace``,
``--base_url``, so a user's ``model-deployer register`` command works unchanged.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shipyard.deployers._fields import absolute_model_path
from shipyard.services.service import ServiceConfig
from shipyard.stack.component import ComponentConfig

__all__ = [
    "ClusterAccess",
    "KubernetesDeployerConfig",
    "KubernetesDeploymentConfig",
    "check_dns_label",
    "check_resources",
]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def check_dns_label(value: str, what: str) -> str:
    """``value`` if it is a Kubernetes DNS-1123 label (a namespace, a secret name)."""
    if not _DNS_LABEL.fullmatch(value) or len(value) > 63:
        raise ValueError(
            f"{what} must be a DNS label (lower-case letters, digits and '-', at most 63 "
            f"characters, starting and ending with a letter or digit); got {value!r}"
        )
    return value


class ClusterAccess(BaseModel):
    """How to reach the API server; kept with every service so it can check itself."""

    model_config = ConfigDict(extra="forbid")

    context: str | None = Field(
        default=None, description="kubeconfig context; default: the current one."
    )
    config_file: str | None = Field(
        default=None, description="kubeconfig file; default: $KUBECONFIG or ~/.kube/config."
    )
    in_cluster: bool = Field(
        default=False, description="Use the pod's service account instead of a kubeconfig."
    )
    namespace: str = Field(default="default", description="Namespace of the resources.")


class KubernetesDeployerConfig(ComponentConfig):
    """Configuration shared by the ``kserve`` and ``seldon`` model deployers."""

    kubernetes_context: str | None = Field(
        default=None,
        description="kubeconfig context of the cluster; default: the current context.",
    )
    kubernetes_namespace: str = Field(
        default="default", description="Namespace the model servers are created in."
    )
    kubernetes_config_file: str | None = Field(
        default=None, description="kubeconfig file; default: $KUBECONFIG or ~/.kube/config."
    )
    in_cluster: bool = Field(
        default=False,
        description="Inside a pod: use its service account instead of a kubeconfig.",
    )
    base_url: str = Field(
        default="",
        description="Ingress base URL (http://host[:port]) clients reach the cluster by; "
        "empty: the URL the cluster reports in the resource's status.",
    )
    model_store: str = Field(
        default="",
        description="Where local model directories are uploaded before deploying: an "
        "fsspec URL (s3://bucket/prefix, gs://..., or a local folder mounted in the "
        "cluster). Empty: only remote model URIs can be deployed.",
    )
    model_store_uri: str = Field(
        default="",
        description="How the cluster names model_store in storageUri (e.g. "
        "pvc://models/ for a mounted folder); default: model_store itself.",
    )
    secret_name: str = Field(
        default="",
        description="Kubernetes secret with the storage credentials the pods use.",
    )
    service_account_name: str = Field(
        default="",
        description="Service account of the model server pods (storage access, IRSA).",
    )
    image: str = Field(
        default="",
        description="Image with shipyard[serve] for custom predictors (see `shipyard build`).",
    )

    @field_validator("kubernetes_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_dns_label(value, "kubernetes_namespace")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.match(r"https?://[^/\s]+", value):
            raise ValueError(f"base_url must start with http:// or https://; got {value!r}")
        return value.rstrip("/")

    def cluster(self) -> ClusterAccess:
        return ClusterAccess(
            context=self.kubernetes_context,
            config_file=self.kubernetes_config_file,
            in_cluster=self.in_cluster,
            namespace=self.kubernetes_namespace,
        )


_QUANTITY = re.compile(
    r"[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(\d+(\.\d*)?|\.\d+)))?"
)


def check_resources(value: dict[str, dict[str, str]] | None) -> dict[str, dict[str, str]] | None:
    """``{"requests": {"cpu": "100m"}, "limits": {...}}`` with valid Kubernetes quantities."""
    if value is None:
        return None
    for part, amounts in value.items():
        if part not in ("requests", "limits"):
            raise ValueError(f"resources takes 'requests' and 'limits'; got {part!r}")
        for name, amount in amounts.items():
            if not _QUANTITY.fullmatch(str(amount)):
                raise ValueError(
                    f"resources.{part}.{name}: {amount!r} is not a Kubernetes quantity "
                    "(e.g. 500m, 1, 2Gi, 512Mi)"
                )
    return {part: {k: str(v) for k, v in amounts.items()} for part, amounts in value.items()}


class KubernetesDeploymentConfig(ServiceConfig):
    """Deployment fields every Kubernetes flavor takes (the seed's names)."""

    replicas: int = Field(default=1, ge=0, description="Pods serving the model.")
    resources: dict[str, dict[str, str]] | None = Field(
        default=None,
        description='Pod resources: {"requests": {"cpu": "100m", "memory": "256Mi"}, '
        '"limits": {...}}.',
    )
    secret_name: str = Field(
        default="",
        description="Kubernetes secret with storage credentials; default: the deployer's.",
    )
    service_account_name: str = Field(
        default="", description="Service account of the pods; default: the deployer's."
    )
    image: str = Field(
        default="",
        description="Image running `shipyard serve` for custom predictors; default: the "
        "deployer's (build one with `shipyard build`).",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment variables. A value that is a {{secret.NAME}} "
        "reference, or whose name says it is a credential (…_TOKEN, …_PASSWORD, …_KEY), "
        "reaches the pods through the server's Kubernetes Secret, never the manifest.",
    )
    auth: bool = Field(
        default=True,
        description="Shipyard's server in the pods requires a bearer token (generated, kept "
        "in the server's Kubernetes Secret; `service.predict` sends it). False serves "
        "without one: only where the cluster controls who reaches the pods.",
    )
    trusted: bool = Field(
        default=False,
        description="Trust the model's code: a pickle/joblib model from a remote URI may "
        "be deployed, and the pods' loader is told so.",
    )
    sha256: str | None = Field(
        default=None,
        description="SHA-256 of the remote model's content (what `shipyard serve "
        "--sha256` checks): Shipyard's server in the pods checks it before loading, and a "
        "match trusts the model.",
    )

    @field_validator("model_uri")
    @classmethod
    def _absolute_local_paths(cls, value: str) -> str:
        # Kept in the resource's annotations: a relative path would mean another folder
        # to whoever rebuilds the registry from the cluster.
        return absolute_model_path(value)

    @field_validator("resources")
    @classmethod
    def _resources(
        cls, value: dict[str, dict[str, str]] | None
    ) -> dict[str, dict[str, str]] | None:
        return check_resources(value)

    @field_validator("secret_name", "service_account_name")
    @classmethod
    def _names(cls, value: str) -> str:
        return check_dns_label(value, "the name") if value else value

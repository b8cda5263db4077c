"""Seldon Core v1 manifests: a ``SeldonDeployment`` of one model node, protocol V2."""

from __future__ import annotations

from typing import Any

from shipyard.deployers._kubernetes import CustomResource
from shipyard.deployers._kubernetes._pod import serve_args
from shipyard.deployers._v2 import READY_PATH

__all__ = ["GRPC_PORT", "HTTP_PORT", "SELDON_DEPLOYMENT", "seldon_deployment"]

SELDON_DEPLOYMENT = CustomResource(
    group="machinelearning.seldon.io",
    version="v1",
    plural="seldondeployments",
    kind="SeldonDeployment",
    operator="Seldon Core v1 (https://docs.seldon.io/projects/seldon-core/en/v1.17.1/)",
)
#: Ports a custom V2 server listens on in a Seldon pod.
HTTP_PORT = 9000
GRPC_PORT = 9500


def seldon_deployment(
    *,
    name: str,
    namespace: str,
    node: str,
    storage_uri: str,
    implementation: str,
    image: str = "",
    replicas: int = 1,
    secret_name: str = "",
    service_account_name: str = "",
    resources: dict[str, dict[str, str]] | None = None,
    env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The SeldonDeployment: a prepackaged ``implementation``, or (``image``) a custom
    container running ``shipyard serve`` on the downloaded model."""
    graph: dict[str, Any] = {"name": node, "type": "MODEL", "modelUri": storage_uri, "children": []}
    if secret_name:
        graph["envSecretRefName"] = secret_name
    if service_account_name:
        graph["serviceAccountName"] = service_account_name
    container: dict[str, Any] = {"name": node}
    if image:
        container.update(
            image=image,
            args=serve_args(node, HTTP_PORT, GRPC_PORT),
            ports=[
                {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
                {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            ],
            readinessProbe={"httpGet": {"path": READY_PATH, "port": HTTP_PORT}},
        )
        graph["endpoint"] = {"type": "REST", "httpPort": HTTP_PORT, "grpcPort": GRPC_PORT}
    else:
        graph["implementation"] = implementation
    if resources:
        container["resources"] = resources
    if env:
        # Credentials only as secretKeyRef (the server's Secret), never as values.
        container["env"] = env
    predictor: dict[str, Any] = {"name": "default", "replicas": replicas, "graph": graph}
    if len(container) > 1:
        predictor["componentSpecs"] = [{"spec": {"containers": [container]}}]
    return {
        "apiVersion": SELDON_DEPLOYMENT.api_version,
        "kind": SELDON_DEPLOYMENT.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"name": name, "protocol": "v2", "predictors": [predictor]},
    }

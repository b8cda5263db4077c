"""KServe manifests: the ``InferenceService`` of a model and the ``shipyard`` runtime.

Plain dicts in the CRDs' own (camelCase) shape, checked in the tests against KServe
v0.20.0's ``openAPIV3Schema`` with unknown fields treated as errors.
"""

from __future__ import annotations

from typing import Any

from shipyard.deployers._kubernetes import CustomResource
from shipyard.deployers._kubernetes._pod import serve_args
from shipyard.deployers._v2 import READY_PATH

__all__ = [
    "CLUSTER_SERVING_RUNTIME",
    "INFERENCE_SERVICE",
    "SHIPYARD_FORMAT",
    "STOP_ANNOTATION",
    "cluster_serving_runtime",
    "predictor_spec",
]

INFERENCE_SERVICE = CustomResource(
    group="serving.kserve.io",
    version="v1beta1",
    plural="inferenceservices",
    kind="InferenceService",
    operator="KServe (https://kserve.github.io/website/docs/admin-guide/overview)",
)
CLUSTER_SERVING_RUNTIME = CustomResource(
    group="serving.kserve.io",
    version="v1alpha1",
    plural="clusterservingruntimes",
    kind="ClusterServingRuntime",
    operator="KServe",
    namespaced=False,
)

#: KServe stops an InferenceService (deletes its pods, keeps it) with this annotation.
STOP_ANNOTATION = "serving.kserve.io/stop"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
#: The model format our runtime declares; a custom predictor's InferenceService asks for it.
SHIPYARD_FORMAT = "shipyard"
#: Ports of `shipyard serve` in the pod: KServe routes HTTP to the first container port.
HTTP_PORT = 8080
GRPC_PORT = 8081


def predictor_spec(
    *,
    model_format: str,
    storage_uri: str,
    runtime: str = "",
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    timeout: int | None = None,
    resources: dict[str, dict[str, str]] | None = None,
    service_account_name: str = "",
    env: list[dict[str, Any]] | None = None,
    canary_traffic_percent: int | None = None,
) -> dict[str, Any]:
    """``spec.predictor`` (or a ``spec.canary[].predictor``) for one model."""
    model: dict[str, Any] = {
        "modelFormat": {"name": model_format},
        "protocolVersion": "v2",
        "storageUri": storage_uri,
    }
    if runtime:
        model["runtime"] = runtime
    if resources:
        model["resources"] = resources
    if env:
        # Merged by KServe into the runtime's container: credentials only as secretKeyRef.
        model["env"] = env
    predictor: dict[str, Any] = {"model": model}
    # Only the fields given: an absent one keeps KServe's default.
    for key, value in (
        ("minReplicas", min_replicas),
        ("maxReplicas", max_replicas),
        ("timeout", timeout),
        ("serviceAccountName", service_account_name or None),
        ("canaryTrafficPercent", canary_traffic_percent),
    ):
        if value is not None:
            predictor[key] = value
    return predictor


def cluster_serving_runtime(image: str, name: str = "shipyard") -> dict[str, Any]:
    """The ``ClusterServingRuntime`` whose container runs ``shipyard serve`` on the model
    directory KServe's storage initializer downloads to ``/mnt/models``."""
    return {
        "apiVersion": CLUSTER_SERVING_RUNTIME.api_version,
        "kind": CLUSTER_SERVING_RUNTIME.kind,
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "shipyard"},
        },
        "spec": {
            "annotations": {
                "prometheus.kserve.io/port": str(HTTP_PORT),
                "prometheus.kserve.io/path": "/metrics",
            },
            "supportedModelFormats": [
                {"name": SHIPYARD_FORMAT, "version": "1", "autoSelect": True}
            ],
            "protocolVersions": ["v2", "grpc-v2"],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": image,
                    # KServe fills in the InferenceService's name: the V2 model name.
                    "args": serve_args("{{.Name}}", HTTP_PORT, GRPC_PORT),
                    "ports": [{"containerPort": HTTP_PORT, "protocol": "TCP"}],
                    "readinessProbe": {
                        "httpGet": {"path": READY_PATH, "port": HTTP_PORT},
                        "periodSeconds": 5,
                    },
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "2Gi"},
                    },
                }
            ],
        },
    }

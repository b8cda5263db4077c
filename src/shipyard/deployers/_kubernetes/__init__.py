"""What the Kubernetes flavors (``kserve``, ``seldon``) share: cluster access through the
official client, ownership labels, model upload, the service and deployer bases."""

from shipyard.deployers._kubernetes._client import (
    CustomResource,
    KubernetesClient,
    KubernetesConflictError,
    KubernetesError,
    KubernetesForbiddenError,
    KubernetesInvalidError,
    ResourceTypeNotFoundError,
)
from shipyard.deployers._kubernetes._config import (
    ClusterAccess,
    KubernetesDeployerConfig,
    check_dns_label,
)
from shipyard.deployers._kubernetes._deployer import KubernetesModelDeployer
from shipyard.deployers._kubernetes._labels import (
    annotations_of,
    label_value,
    resource_name,
    selector,
)
from shipyard.deployers._kubernetes._patch import merge_patch, spec_patches
from shipyard.deployers._kubernetes._service import KubernetesModelService, Observation
from shipyard.deployers._kubernetes._storage import (
    ModelFacts,
    inspect_model,
    is_remote,
    upload_model,
)

__all__ = [
    "ClusterAccess",
    "CustomResource",
    "KubernetesClient",
    "KubernetesConflictError",
    "KubernetesDeployerConfig",
    "KubernetesError",
    "KubernetesForbiddenError",
    "KubernetesInvalidError",
    "KubernetesModelDeployer",
    "KubernetesModelService",
    "ModelFacts",
    "Observation",
    "ResourceTypeNotFoundError",
    "annotations_of",
    "check_dns_label",
    "inspect_model",
    "is_remote",
    "label_value",
    "merge_patch",
    "resource_name",
    "selector",
    "spec_patches",
    "upload_model",
]

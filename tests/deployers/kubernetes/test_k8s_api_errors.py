"""What the API server refuses (403, 404, 409, 422) reaches the user as one clear error
naming the resource and the fix, and leaves the registry as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.deployers import ModelDeployer
from shipyard.deployers._kubernetes import (
    KubernetesConflictError,
    KubernetesForbiddenError,
    KubernetesInvalidError,
    ResourceTypeNotFoundError,
)
from shipyard.deployers.kserve import KServeModelDeployer
from shipyard.errors import ShipyardError

from ..conftest import Models
from .conftest import NAMESPACE, register
from .emulator import Cluster, running_cluster
from .operators import KServeOperator

ISVC = ("serving.kserve.io/v1beta1", "inferenceservices")
REMOTE = {
    "model_uri": "s3://bucket/iris",
    "model_name": "iris",
    "predictor": "sklearn",
    "trusted": True,
}


def _deployer(cluster: Cluster, tmp_path: Path) -> KServeModelDeployer:
    register("kserve", cluster, tmp_path / "bucket")
    deployer = ModelDeployer.get_active_model_deployer()
    assert isinstance(deployer, KServeModelDeployer)
    return deployer


def test_403_names_the_rbac_rights_to_grant(home: Path, cluster: Cluster, tmp_path: Path) -> None:
    deployer = _deployer(cluster, tmp_path)
    cluster.refuse(
        "create",
        "inferenceservices",
        403,
        'inferenceservices.serving.kserve.io is forbidden: User "tester" cannot create',
    )
    with pytest.raises(KubernetesForbiddenError) as err:
        deployer.deploy_model(REMOTE, timeout=5)
    message = str(err.value)
    assert "refused to create the InferenceService" in message
    assert f"namespace '{NAMESPACE}'" in message
    assert "inferenceservices.serving.kserve.io" in message and "RoleBinding" in message
    assert err.value.status_code == 403
    assert deployer.find_model_server() == [] and cluster.items(*ISVC) == []


def test_404_unknown_resource_type_says_install_the_operator(home: Path, tmp_path: Path) -> None:
    with running_cluster() as bare:  # no KServe CRDs in this cluster
        bare.write_kubeconfig(tmp_path, NAMESPACE)
        deployer = _deployer(bare, tmp_path)
        with pytest.raises(ResourceTypeNotFoundError, match="install KServe"):
            deployer.deploy_model(REMOTE, timeout=5)
        with pytest.raises(
            ResourceTypeNotFoundError, match=r"inferenceservices\.serving\.kserve\.io"
        ):
            deployer.find_model_server()


def test_409_a_name_taken_by_someone_else(home: Path, cluster: Cluster, tmp_path: Path) -> None:
    deployer = _deployer(cluster, tmp_path)
    cluster.refuse("create", "inferenceservices", 409, 'inferenceservices "iris" already exists')
    with pytest.raises(KubernetesConflictError, match="already exists") as err:
        deployer.deploy_model(REMOTE, timeout=5)
    assert "deploy under another model name" in str(err.value)
    assert deployer.find_model_server() == []


def test_422_names_the_fields(home: Path, cluster: Cluster, tmp_path: Path) -> None:
    deployer = _deployer(cluster, tmp_path)
    cluster.refuse(
        "create",
        "inferenceservices",
        422,
        'InferenceService.serving.kserve.io "iris" is invalid',
        causes=[
            {
                "reason": "FieldValueInvalid",
                "field": "spec.predictor.minReplicas",
                "message": "Invalid value: 9: must be less than or equal to maxReplicas",
            }
        ],
    )
    with pytest.raises(KubernetesInvalidError) as err:
        deployer.deploy_model(REMOTE, timeout=5)
    assert "spec.predictor.minReplicas: Invalid value: 9" in str(err.value)
    assert "--dry-run" in str(err.value)


def test_an_update_refused_keeps_the_running_model(
    home: Path, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    deployer = _deployer(cluster, tmp_path)
    with cluster.controller(*ISVC, KServeOperator(bucket)):
        service = deployer.deploy_model({"model_uri": models.a, "model_name": "iris"}, timeout=30)
        cluster.refuse("patch", "inferenceservices", 403, "patch is forbidden")
        with pytest.raises(ShipyardError, match="refused to patch"):
            deployer.deploy_model({"model_uri": models.b, "model_name": "iris"}, timeout=30)
        cluster.allow()
        [kept] = deployer.find_model_server(model_name="iris")
        assert kept.uuid == service.uuid and kept.config.model_uri == models.a
        assert kept.is_running and "refused to patch" in kept.status.last_error


def test_an_unreachable_cluster_is_named(home: Path, tmp_path: Path, models: Models) -> None:
    from shipyard.deployers._kubernetes import KubernetesError

    with running_cluster() as gone:
        gone.write_kubeconfig(tmp_path, NAMESPACE)
    deployer = _deployer(gone, tmp_path)  # its API server has stopped
    with pytest.raises(KubernetesError, match="Cannot reach the Kubernetes API"):
        deployer.deploy_model(REMOTE, timeout=5)

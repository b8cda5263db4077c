"""The kserve flavor's whole lifecycle through the official client against an emulated
API server, the test playing KServe's controller (pending, ready, model load failures,
canaries, stop): deploy, poll, update in place, canary, stop, start, rebuild the
registry from the cluster, delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.deployers import ModelDeployer
from shipyard.deployers.kserve import (
    KServeDeploymentConfig,
    KServeDeploymentService,
    KServeModelDeployer,
)
from shipyard.errors import DeploymentError
from shipyard.services import ServiceState
from shipyard.store import Store

from ..conftest import Models
from .conftest import BASE_URL, NAMESPACE, cli, register
from .emulator import Cluster
from .operators import KServeOperator

ISVC = ("serving.kserve.io/v1beta1", "inferenceservices")


def _deployer(cluster: Cluster, bucket: Path, *extra: str) -> KServeModelDeployer:
    register("kserve", cluster, bucket, *extra)
    deployer = ModelDeployer.get_active_model_deployer()
    assert isinstance(deployer, KServeModelDeployer)
    return deployer


def _isvc(cluster: Cluster, name: str) -> Any:
    return cluster.get(*ISVC, NAMESPACE, name)


def test_deploy_update_canary_stop_start_rebuild_delete(
    home: Path, store: Store, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    deployer = _deployer(cluster, bucket)
    operator = KServeOperator(bucket)
    config = KServeDeploymentConfig(
        model_uri=models.a,
        model_name="iris",
        pipeline_name="training",
        pipeline_step_name="deploy",
        pipeline_run_id="run-1",
        resources={"requests": {"cpu": "100m"}},
    )
    with cluster.controller(*ISVC, operator):
        service = deployer.deploy_model(config, timeout=30)
        assert isinstance(service, KServeDeploymentService)
        name = service.resource_name
        # The controller said "pending" first; the deploy returned once it said ready.
        assert operator.written[:2] == [(name, 1, "pending"), (name, 1, "ready")]
        assert service.is_running and service.status.state == ServiceState.ACTIVE
        assert service.prediction_url == f"{BASE_URL}/v2/models/{name}/infer"
        assert service.host_header == f"{name}-{NAMESPACE}.example.com"
        resource = _isvc(cluster, name)
        assert resource is not None
        model = resource["spec"]["predictor"]["model"]
        assert model["modelFormat"] == {"name": "sklearn"}
        assert model["storageUri"].startswith("s3://models-bucket/shipyard/iris/")
        uploaded = bucket / model["storageUri"].removeprefix("s3://models-bucket/shipyard/")
        assert (uploaded / "model.joblib").is_file()
        settings = json.loads((uploaded / "model-settings.json").read_text())
        assert settings["implementation"] == "mlserver_sklearn.SKLearnModel"
        labels = resource["metadata"]["labels"]
        assert labels["shipyard.dev/service-uuid"] == service.uuid
        assert labels["shipyard.dev/pipeline-name"] == "training"

        # The URL and the Host header an ingress needs, as the CLI shows them.
        shown = cli("model-deployer", "models", "get-url", service.uuid[:8]).splitlines()
        assert shown[0] == service.prediction_url
        assert f"'Host: {service.host_header}'" in shown[1]  # on stderr
        described = json.loads(
            cli("model-deployer", "models", "describe", service.uuid, "-O", "json")
        )
        assert described["info"]["HOST_HEADER"] == service.host_header
        assert described["info"]["RESOURCE"] == f"InferenceService/{name}"

        # The same config again: nothing to do, nothing sent.
        again = deployer.deploy_model(config, timeout=30)
        assert again.uuid == service.uuid
        assert (_isvc(cluster, name) or {})["metadata"]["generation"] == 1

        # Update in place: same UUID, same name and URL, a new generation served.
        updated = deployer.deploy_model(
            config.model_copy(update={"model_uri": models.b}), timeout=30
        )
        assert (updated.uuid, updated.prediction_url) == (service.uuid, service.prediction_url)
        now = _isvc(cluster, name)
        assert now is not None
        assert now["metadata"]["generation"] == 2
        assert now["status"]["observedGeneration"] == 2
        b_uri = now["spec"]["predictor"]["model"]["storageUri"]
        assert b_uri != model["storageUri"]
        assert updated.config.model_uri == models.b

        # A model that fails to load: refused, the spec put back, the reason kept.
        with pytest.raises(DeploymentError, match="ModelLoadFailed") as err:
            deployer.deploy_model(
                config.model_copy(update={"model_uri": models.broken}), timeout=30
            )
        assert "previous model keeps serving" in str(err.value)
        back = _isvc(cluster, name)
        assert back["spec"]["predictor"]["model"]["storageUri"] == b_uri
        [kept] = deployer.find_model_server(model_name="iris")
        assert kept.config.model_uri == models.b
        assert kept.is_running and "ModelLoadFailed" in kept.status.last_error

        # A canary (Standard mode): the new model beside the old with 25% of the traffic,
        # then promoted.
        canary = config.model_copy(update={"canary_traffic_percent": 25})
        promoted = deployer.deploy_model(canary, timeout=30)
        history = cluster.history(*ISVC, name)
        staged = [v for v in history if (v.get("spec") or {}).get("canary")]
        assert staged and staged[0]["spec"]["canary"][0]["trafficPercent"] == 25
        assert staged[0]["spec"]["predictor"]["model"]["storageUri"] == b_uri
        final = _isvc(cluster, name)
        assert "canary" not in final["spec"]
        assert final["spec"]["predictor"]["model"]["storageUri"] == model["storageUri"]
        assert promoted.uuid == service.uuid and promoted.is_running

        # Stop (Standard mode: KServe's stop annotation), then start again.
        stopped = deployer.stop_model_server(service.uuid)
        assert stopped.status.state == ServiceState.INACTIVE
        annotations = _isvc(cluster, name)["metadata"]["annotations"]
        assert annotations["serving.kserve.io/stop"] == "true"
        started = deployer.start_model_server(service.uuid, timeout=30)
        assert started.is_running
        annotations = _isvc(cluster, name)["metadata"]["annotations"]
        assert annotations["serving.kserve.io/stop"] == "false"

    # The store is lost: the registry is rebuilt from the cluster's labels and annotations.
    store.delete_service(service.uuid)
    [found] = deployer.find_model_server(pipeline_name="training", model_name="iris")
    assert found.uuid == service.uuid
    assert isinstance(found, KServeDeploymentService)
    assert found.resource_name == name and found.config.pipeline_run_id == "run-1"
    assert found.config.model_uri == models.a

    cli("model-deployer", "models", "delete", service.uuid, "--yes")
    assert _isvc(cluster, name) is None
    assert deployer.find_model_server() == []
    assert operator.problems == []  # every object the cluster held fits the CRD


def test_knative_mode_canary_and_scale_to_zero(
    home: Path, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    deployer = _deployer(cluster, bucket)
    operator = KServeOperator(bucket, mode="Knative")
    config = KServeDeploymentConfig(model_uri=models.a, model_name="iris", min_replicas=2)
    with cluster.controller(*ISVC, operator):
        service = deployer.deploy_model(config, timeout=30)
        assert isinstance(service, KServeDeploymentService)
        name = service.resource_name
        deployer.deploy_model(
            config.model_copy(update={"model_uri": models.b, "canary_traffic_percent": 10}),
            timeout=30,
        )
        history = cluster.history(*ISVC, name)
        percents = [v["spec"]["predictor"].get("canaryTrafficPercent") for v in history]
        assert 10 in percents and percents[-1] is None  # staged at 10%, then promoted

        deployer.stop_model_server(service.uuid)
        predictor = _isvc(cluster, name)["spec"]["predictor"]
        assert predictor["minReplicas"] == 0  # scaled to zero, nothing deleted
        deployer.start_model_server(service.uuid, timeout=30)
        predictor = _isvc(cluster, name)["spec"]["predictor"]
        assert predictor["minReplicas"] == 2
    assert operator.problems == []


def test_a_model_that_never_loads_leaves_nothing_behind(
    home: Path, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    deployer = _deployer(cluster, bucket)
    with (
        cluster.controller(*ISVC, KServeOperator(bucket)),
        pytest.raises(DeploymentError, match="ModelLoadFailed"),
    ):
        deployer.deploy_model({"model_uri": models.broken, "model_name": "x"}, timeout=30)
    assert cluster.items(*ISVC) == []
    assert deployer.find_model_server() == []


def test_a_deploy_that_times_out_stays_and_says_so(
    home: Path, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    deployer = _deployer(cluster, tmp_path / "bucket")
    # No controller: KServe never answers.
    with pytest.raises(DeploymentError, match="was not ready after 1 s"):
        deployer.deploy_model({"model_uri": models.a, "model_name": "slow"}, timeout=1)
    [service] = deployer.find_model_server(model_name="slow")
    assert service.status.state == ServiceState.PENDING_STARTUP
    assert "not ready after" in service.status.last_error


def test_a_storage_secret_reaches_the_pods_through_a_service_account(
    home: Path, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    deployer = _deployer(cluster, bucket, "--secret_name=s3-credentials")
    [account, isvc] = deployer.render_deployment({"model_uri": models.a, "model_name": "m"})
    assert account["kind"] == "ServiceAccount" and account["secrets"] == [
        {"name": "s3-credentials"}
    ]
    assert isvc["spec"]["predictor"]["serviceAccountName"] == account["metadata"]["name"]
    with cluster.controller(*ISVC, KServeOperator(bucket)):
        service = deployer.deploy_model({"model_uri": models.a, "model_name": "m"}, timeout=30)
    stored = cluster.get("v1", "serviceaccounts", NAMESPACE, "shipyard-s3-credentials")
    assert stored is not None and stored["secrets"] == [{"name": "s3-credentials"}]
    predictor = _isvc(cluster, service.resource_name)["spec"]["predictor"]  # type: ignore[attr-defined]
    assert predictor["serviceAccountName"] == "shipyard-s3-credentials"

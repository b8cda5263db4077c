"""The seldon flavor's lifecycle through the official client against an emulated API
server, the test playing Seldon Core's operator (Creating, Available, Failed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.deployers import ModelDeployer
from shipyard.deployers.seldon import (
    SeldonDeploymentConfig,
    SeldonDeploymentService,
    SeldonModelDeployer,
)
from shipyard.errors import DeploymentError
from shipyard.services import ServiceState
from shipyard.store import Store
from shipyard.testing import wait_until

from ..conftest import Models
from .conftest import BASE_URL, NAMESPACE, cli, register
from .emulator import Cluster
from .operators import SeldonOperator

SDEP = ("machinelearning.seldon.io/v1", "seldondeployments")


def test_the_seeds_config_deploys_updates_stops_starts_and_deletes(
    home: Path, store: Store, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    register("seldon", cluster, bucket, "--secret_name=s3-credentials")
    deployer = ModelDeployer.get_active_model_deployer()
    assert isinstance(deployer, SeldonModelDeployer)
    operator = SeldonOperator(bucket)
    # As written in the seed's examples.
    config = SeldonDeploymentConfig(
        model_uri=models.a,
        model_name="iris",
        replicas=1,
        implementation="SKLEARN_SERVER",
        secret_name="s3-credentials",
        pipeline_name="training",
        pipeline_run_id="run-7",
        pipeline_step_name="deploy",
    )
    with cluster.controller(*SDEP, operator):
        service = deployer.deploy_model(config, replace=True, timeout=30)
        assert isinstance(service, SeldonDeploymentService)
        name = service.resource_name
        assert service.is_running
        assert service.prediction_url == (
            f"{BASE_URL}/seldon/{NAMESPACE}/{name}/v2/models/{name}/infer"
        )
        resource = cluster.get(*SDEP, NAMESPACE, name)
        graph = resource["spec"]["predictors"][0]["graph"]
        assert resource["spec"]["protocol"] == "v2"
        assert (graph["implementation"], graph["envSecretRefName"]) == (
            "SKLEARN_SERVER",
            "s3-credentials",
        )

        updated = deployer.deploy_model(
            config.model_copy(update={"model_uri": models.b}), timeout=30
        )
        assert (updated.uuid, updated.prediction_url) == (service.uuid, service.prediction_url)
        b_uri = cluster.get(*SDEP, NAMESPACE, name)["spec"]["predictors"][0]["graph"]["modelUri"]
        assert b_uri != graph["modelUri"]

        with pytest.raises(DeploymentError, match="previous model keeps serving"):
            deployer.deploy_model(
                config.model_copy(update={"model_uri": models.broken}), timeout=30
            )
        now = cluster.get(*SDEP, NAMESPACE, name)
        assert now["spec"]["predictors"][0]["graph"]["modelUri"] == b_uri

        # The operator confirms the restored spec on its own time (Seldon v1 reports no
        # observedGeneration): the kept model is found serving once it has.
        # Until it has, the resource may still carry the status of before the failed
        # update (available), then the operator's "Creating": one observation of it
        # running and the failure's record together is what a kept model looks like.
        def kept_and_recorded() -> bool:
            [kept] = deployer.find_model_server(model_name="iris")
            return kept.is_running and "Error" in (kept.status.last_error or "")

        wait_until(
            kept_and_recorded, "the operator to report the restored model available", timeout=60
        )

        stopped = deployer.stop_model_server(service.uuid)
        assert stopped.status.state == ServiceState.INACTIVE
        assert cluster.get(*SDEP, NAMESPACE, name)["spec"]["predictors"][0]["replicas"] == 0
        deployer.start_model_server(service.uuid, timeout=30)
        # As above: without observedGeneration, start may see the status of before the
        # stop; the restored replicas are reported available on the operator's time.
        wait_until(
            lambda: deployer.find_model_server(model_name="iris")[0].is_running,
            "the operator to report the started model available",
            timeout=60,
        )
        assert cluster.get(*SDEP, NAMESPACE, name)["spec"]["predictors"][0]["replicas"] == 1

    store.delete_service(service.uuid)
    [found] = deployer.find_model_server(pipeline_run_id="run-7")
    assert (found.uuid, found.config.model_uri) == (service.uuid, models.b)
    cli("model-deployer", "models", "delete", service.uuid[:8], "--yes")
    assert cluster.get(*SDEP, NAMESPACE, name) is None
    assert operator.problems == []


def test_a_failed_seldon_deployment_reports_the_operators_description(
    home: Path, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    register("seldon", cluster, bucket)
    deployer = ModelDeployer.get_active_model_deployer()
    with (
        cluster.controller(*SDEP, SeldonOperator(bucket)),
        pytest.raises(DeploymentError, match="failed while waiting for ready"),
    ):
        deployer.deploy_model(
            {"model_uri": models.broken, "model_name": "x", "implementation": "SKLEARN_SERVER"},
            timeout=30,
        )
    assert cluster.items(*SDEP) == []

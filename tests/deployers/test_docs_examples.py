"""The Python examples of the model-deployer docs, with only their imports changed."""

from __future__ import annotations

import uuid
from pathlib import Path

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer
from shipyard.services import ServiceState
from shipyard.stack import Client

from .conftest import Models


def test_deploy_find_check_start_delete_as_in_the_docs(home: Path, models: Models) -> None:
    # "Deploy a model from a step": the config names the model, the cluster-only
    # settings (replicas, implementation, secret_name) and the pipeline and step.
    model_deployer = LocalModelDeployer.get_active_model_deployer()
    run_id = str(uuid.uuid4())  # what get_step_context().run_id gives
    service_config = LocalDeploymentConfig(
        model_uri=models.a,
        model_name="my-model",
        replicas=1,
        implementation="SKLEARN_SERVER",
        secret_name="seldon-secret",
        pipeline_name="continuous-deployment-pipeline",
        pipeline_run_id=run_id,
        pipeline_step_name="model_deployer",
    )
    service = model_deployer.deploy_model(service_config, replace=True, timeout=300)
    assert service.is_running
    assert service.config.pipeline_run_id == run_id

    # "Interact with deployed models": find it by pipeline, step and model.
    active = Client().active_stack.model_deployer
    assert isinstance(active, LocalModelDeployer)
    model_deployer = active
    services = model_deployer.find_model_server(
        pipeline_name="continuous-deployment-pipeline",
        pipeline_step_name="model_deployer",
        model_name="my-model",
    )
    assert [s.uuid for s in services] == [service.uuid]
    assert [s.uuid for s in model_deployer.find_model_server(pipeline_run_id=run_id)] == [
        service.uuid
    ]
    assert model_deployer.find_model_server(pipeline_name="another-pipeline") == []
    found = services[0]
    assert found.is_running and not found.is_failed
    assert found.prediction_url == service.prediction_url
    assert found.prediction_url.endswith("/v2/models/my-model/infer")  # type: ignore[union-attr]
    assert found.predict(models.rows).tolist() == models.expected_a()

    # The cluster-only fields are kept and shown.
    assert (found.config.replicas, found.config.secret_name) == (1, "seldon-secret")  # type: ignore[attr-defined]
    assert found.config.implementation == "SKLEARN_SERVER"  # type: ignore[attr-defined]
    info = model_deployer.get_model_server_info(found)
    assert info["PREDICTION_URL"] == found.prediction_url
    assert info["MODEL_URI"] == models.a

    # "Not running": stop it, then the docs' branch starts it again.
    model_deployer.stop_model_server(found.uuid, timeout=60)
    services = model_deployer.find_model_server(
        pipeline_name="continuous-deployment-pipeline",
        pipeline_step_name="model_deployer",
        model_name="my-model",
    )
    if services:
        if services[0].is_running:
            raise AssertionError("a stopped server must not be running")
        elif services[0].is_failed:
            raise AssertionError(f"unexpected failure: {services[0].status.last_error}")
        else:
            assert services[0].status.state is ServiceState.INACTIVE
            services[0].start(timeout=100)
    assert services[0].is_running
    assert services[0].prediction_url == service.prediction_url  # same port after restart
    assert model_deployer.find_model_server(running=True)[0].uuid == service.uuid

    # "Delete".
    pid = model_deployer.get_model_server_info(services[0])["DAEMON_PID"]
    assert pid is not None
    model_deployer.delete_service(services[0].uuid, timeout=100, force=False)
    assert model_deployer.find_model_server(model_name="my-model") == []
    assert not Path(f"/proc/{pid}").exists()
    assert not (home / "services" / service.uuid).exists()

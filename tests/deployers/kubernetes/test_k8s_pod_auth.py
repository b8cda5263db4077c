"""The pods' ``shipyard serve`` requires a bearer token from the server's Kubernetes
Secret: the pod runs (as the test's kubelet runs it, env from the emulated cluster) and
answers 401 without the token, 200 with the one ``service.request_headers()`` reads;
the readiness probe stays open. ``auth=False`` is the explicit opt-out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import shipyard
from shipyard.deployers import ModelDeployer
from shipyard.deployers._kubernetes import KubernetesModelDeployer, KubernetesModelService
from shipyard.store import Store
from shipyard.testing import free_port

from .conftest import NAMESPACE, cli, register
from .emulator import Cluster
from .k8s_predictors import Scaled
from .kubelet import run_pod, wait_ready
from .operators import STORE_URI, KServeOperator, SeldonOperator

ROWS = np.array([[1.0, 2.0, 3.0], [10.0, 0.0, 5.5]])
BODY: dict[str, Any] = {
    "inputs": [
        {"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": ROWS.ravel().tolist()}
    ]
}
RESOURCES = {
    "kserve": ("serving.kserve.io/v1beta1", "inferenceservices"),
    "seldon": ("machinelearning.seldon.io/v1", "seldondeployments"),
}


def _deploy(
    flavor: str, cluster: Cluster, tmp_path: Path, port: int, **config: Any
) -> tuple[KubernetesModelService, dict[str, Any], Path]:
    """(service, its resource, the uploaded folder) of a custom-predictor model."""
    bucket = tmp_path / "bucket"
    register(flavor, cluster, bucket, "--image=registry.example/shipyard:1")
    cli("model-deployer", "update", flavor, f"--base_url=http://127.0.0.1:{port}")
    deployer = ModelDeployer.get_active_model_deployer()
    assert isinstance(deployer, KubernetesModelDeployer)
    model_dir = shipyard.save_model(None, tmp_path / "scaled", predictor=Scaled, input_example=ROWS)
    operator = (KServeOperator if flavor == "kserve" else SeldonOperator)(bucket)
    with cluster.controller(*RESOURCES[flavor], operator):
        service = deployer.deploy_model(
            {"model_uri": str(model_dir), "model_name": "scaled", **config}, timeout=60
        )
    assert operator.problems == []  # valid against the CRD schema
    assert isinstance(service, KubernetesModelService)
    resource = cluster.get(*RESOURCES[flavor], NAMESPACE, service.resource_name)
    assert resource is not None
    return service, resource, bucket / service.storage_uri.removeprefix(STORE_URI + "/")


@pytest.mark.parametrize("flavor", ["kserve", "seldon"])
def test_the_pod_requires_the_token_of_its_secret_and_predict_sends_it(
    home: Path, store: Store, cluster: Cluster, tmp_path: Path, flavor: str
) -> None:
    port = free_port()
    service, resource, folder = _deploy(flavor, cluster, tmp_path, port)
    with run_pod(cluster, NAMESPACE, resource, folder, tmp_path / "pod.log", port) as pod:
        wait_ready(pod)  # the kubelet's probe carries no token
        infer = f"{pod.url}/v2/models/{service.served_name}/infer"
        assert httpx.post(infer, json=BODY, timeout=30).status_code == 401
        wrong = {"authorization": "Bearer not-the-token"}
        assert httpx.post(infer, json=BODY, headers=wrong, timeout=30).status_code == 401
        headers = service.request_headers()
        answer = httpx.post(infer, json=BODY, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == [0.6, 1.55]
        if flavor == "kserve":  # the ingress path is the pod's own here (Seldon prefixes it)
            assert service.predict(ROWS).tolist() == [0.6, 1.55]
    # The token is nowhere but the cluster's Secret.
    token = headers["authorization"].removeprefix("Bearer ")
    assert all(token.encode() not in p.read_bytes() for p in home.rglob("*") if p.is_file())


@pytest.mark.parametrize("flavor", ["kserve", "seldon"])
def test_auth_false_is_the_explicit_opt_out(
    home: Path, store: Store, cluster: Cluster, tmp_path: Path, flavor: str
) -> None:
    port = free_port()
    service, resource, folder = _deploy(flavor, cluster, tmp_path, port, auth=False)
    assert service.request_headers() == {}
    with run_pod(cluster, NAMESPACE, resource, folder, tmp_path / "pod.log", port) as pod:
        wait_ready(pod)
        infer = f"{pod.url}/v2/models/{service.served_name}/infer"
        assert httpx.post(infer, json=BODY, timeout=30).status_code == 200
    env = {e["name"]: e for e in _container_env(resource)}
    assert env["SHIPYARD_SERVER_INSECURE"]["value"] == "true"
    assert "SHIPYARD_SERVER_AUTH_TOKEN" not in env


def _container_env(resource: dict[str, Any]) -> list[dict[str, Any]]:
    from .kubelet import container

    return container(resource)[1]

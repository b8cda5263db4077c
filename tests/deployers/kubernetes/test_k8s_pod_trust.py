"""Model trust for kserve/seldon: a remote pickle is refused at deploy time unless
trusted (``--trust``, a pinned sha256, an allow-listed prefix), and the pod's own loader,
which sees only a local copy in /mnt/models, is told where it came from and what the
caller decided, so it applies the remote URI's rule itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.deployers import ModelDeployer
from shipyard.deployers._kubernetes import KubernetesModelDeployer, KubernetesModelService
from shipyard.errors import UntrustedModelError
from shipyard.models._trust import content_sha256
from shipyard.store import Store

from ..conftest import Models
from .conftest import NAMESPACE, register
from .emulator import Cluster
from .kubelet import ready_or_exited, run_pod
from .operators import KServeOperator, SeldonOperator

REMOTE = "s3://other-bucket/models/iris"
RESOURCES = {
    "kserve": ("serving.kserve.io/v1beta1", "inferenceservices"),
    "seldon": ("machinelearning.seldon.io/v1", "seldondeployments"),
}
PLATFORM = {"kserve": {"predictor": "sklearn"}, "seldon": {"implementation": "SKLEARN_SERVER"}}
SHIPYARDS = {"kserve": {"predictor": "custom"}, "seldon": {"implementation": "custom"}}


def _deployer(flavor: str, cluster: Cluster, tmp_path: Path) -> KubernetesModelDeployer:
    register(flavor, cluster, tmp_path / "bucket", "--image=registry.example/shipyard:1")
    deployer = ModelDeployer.get_active_model_deployer()
    assert isinstance(deployer, KubernetesModelDeployer)
    return deployer


def _operator(flavor: str, tmp_path: Path, models: Models) -> Any:
    operator_class = KServeOperator if flavor == "kserve" else SeldonOperator
    return operator_class(tmp_path / "bucket", remote={REMOTE: models.a})


@pytest.mark.parametrize("flavor", ["kserve", "seldon"])
def test_a_remote_pickle_for_a_platform_runtime_needs_trust_at_deploy(
    home: Path, store: Store, cluster: Cluster, models: Models, tmp_path: Path, flavor: str
) -> None:
    deployer = _deployer(flavor, cluster, tmp_path)
    config = {"model_uri": REMOTE, "model_name": "iris", **PLATFORM[flavor]}
    # As a user types it: one error naming the risk, the ways to trust, safe formats.
    sets = [f"--set={key}={value}" for key, value in PLATFORM[flavor].items()]
    result = CliRunner().invoke(app, ["deploy", REMOTE, "--name", "iris", *sets])
    assert isinstance(result.exception, UntrustedModelError), result.output
    message = str(result.exception)
    assert "Refusing to deploy s3://other-bucket/models/iris" in message
    assert "--trust" in message and "skops" in message
    # A pin this runtime cannot check is no trust either.
    with pytest.raises(UntrustedModelError, match="only be checked by Shipyard's server"):
        deployer.deploy_model({**config, "sha256": "0" * 64}, timeout=10)
    assert cluster.items(*RESOURCES[flavor]) == [] and deployer.find_model_server() == []

    with cluster.controller(*RESOURCES[flavor], _operator(flavor, tmp_path, models)):
        service = deployer.deploy_model({**config, "trusted": True}, timeout=60)
    assert service.is_running


def _run_until_loaded_or_refused(
    cluster: Cluster, service: KubernetesModelService, models: Models, tmp_path: Path, log: str
) -> tuple[bool, str]:
    resource = cluster.get(*RESOURCES[service.flavor], NAMESPACE, service.resource_name)
    assert resource is not None
    with run_pod(cluster, NAMESPACE, resource, Path(models.a), tmp_path / log) as pod:
        if not ready_or_exited(pod):
            return False, pod.output()
        infer = f"{pod.url}/v2/models/{service.served_name}/infer"
        rows = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.0] * 4}]}
        answer = httpx.post(infer, json=rows, headers=service.request_headers(), timeout=30)
        return answer.status_code == 200, pod.output()


@pytest.mark.parametrize("flavor", ["kserve", "seldon"])
def test_the_pods_loader_applies_the_remote_uris_rule_to_its_local_copy(
    home: Path, store: Store, cluster: Cluster, models: Models, tmp_path: Path, flavor: str
) -> None:
    deployer = _deployer(flavor, cluster, tmp_path)
    operator = _operator(flavor, tmp_path, models)
    config = {"model_uri": REMOTE, "model_name": "iris", **SHIPYARDS[flavor]}
    with cluster.controller(*RESOURCES[flavor], operator):
        # Shipyard's server cannot tell the format from here: the pod decides, told.
        service = deployer.deploy_model(config, timeout=60)
    assert isinstance(service, KubernetesModelService)
    loaded, output = _run_until_loaded_or_refused(cluster, service, models, tmp_path, "1.log")
    assert not loaded
    assert f"Refusing to load {REMOTE}" in output and "joblib" in output

    # Pinned by its content: the pod checks the digest of what it got, and serves it.
    pinned = {**config, "sha256": content_sha256(Path(models.a))}
    with cluster.controller(*RESOURCES[flavor], operator):
        service = deployer.deploy_model(pinned, timeout=60)
    assert isinstance(service, KubernetesModelService)
    loaded, output = _run_until_loaded_or_refused(cluster, service, models, tmp_path, "2.log")
    assert loaded, output

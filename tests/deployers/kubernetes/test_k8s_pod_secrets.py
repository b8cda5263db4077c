"""Credentials of a kserve/seldon deployment reach the pods through the server's
Kubernetes Secret (``secretKeyRef``, KServe's HTTPS storage credentials), never as plain
text in a manifest, the service record, ``store.db`` or the CLI's output; the Secret is
owned by the resource and deleted with the server."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.deployers import ModelDeployer
from shipyard.deployers._kubernetes import KubernetesModelDeployer, KubernetesModelService
from shipyard.errors import DeploymentError
from shipyard.secrets import SecretStore
from shipyard.store import Store

from ..conftest import Models
from .conftest import NAMESPACE, cli, register
from .emulator import Cluster
from .operators import KServeOperator, SeldonOperator

PASSWORD = "hunter2-pw-7Q"
API_TOKEN = "tok-value-4242"
DB_PASSWORD = "plain-db-pw-99"
PLAIN_URI = "https://models.example.test/iris"
RESOURCES = {
    "kserve": ("serving.kserve.io/v1beta1", "inferenceservices"),
    "seldon": ("machinelearning.seldon.io/v1", "seldondeployments"),
}


def _deployer(flavor: str, cluster: Cluster, bucket: Path) -> KubernetesModelDeployer:
    register(flavor, cluster, bucket, "--image=registry.example/shipyard:1")
    deployer = ModelDeployer.get_active_model_deployer()
    assert isinstance(deployer, KubernetesModelDeployer)
    return deployer


def _secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _config(flavor: str) -> dict[str, Any]:
    runtime = {"predictor": "custom"} if flavor == "kserve" else {"implementation": "custom"}
    return {
        "model_uri": f"https://bob:{PASSWORD}@models.example.test/iris",
        "model_name": "iris",
        "env": {"API_TOKEN": "{{secret.api-token}}", "DB_PASSWORD": DB_PASSWORD, "LOG": "1"},
        **runtime,
    }


@pytest.mark.parametrize("flavor", ["kserve", "seldon"])
def test_credentials_reach_the_pods_only_through_their_secret(
    home: Path, store: Store, cluster: Cluster, models: Models, tmp_path: Path, flavor: str
) -> None:
    deployer = _deployer(flavor, cluster, tmp_path / "bucket")
    SecretStore(store).set("api-token", API_TOKEN)
    operator_class = KServeOperator if flavor == "kserve" else SeldonOperator
    operator = operator_class(tmp_path / "bucket", remote={PLAIN_URI: models.a})
    with cluster.controller(*RESOURCES[flavor], operator):
        service = deployer.deploy_model(_config(flavor), timeout=60)
    assert isinstance(service, KubernetesModelService)
    assert operator.problems == []  # every version is valid against the CRD schema
    resource = cluster.get(*RESOURCES[flavor], NAMESPACE, service.resource_name)
    assert resource is not None

    # The manifest names the URI without its credentials, and the Secret by reference.
    if flavor == "kserve":
        model = resource["spec"]["predictor"]["model"]
        uri, env = model["storageUri"], model["env"]
        account = cluster.get("v1", "serviceaccounts", NAMESPACE, service.secret)
        assert account is not None and {"name": service.secret} in account["secrets"]
        assert resource["spec"]["predictor"]["serviceAccountName"] == service.secret
    else:
        graph = resource["spec"]["predictors"][0]["graph"]
        uri = graph["modelUri"]
        env = resource["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["env"]
        assert graph["envSecretRefName"] == service.secret
    assert uri == PLAIN_URI
    by_name = {entry["name"]: entry for entry in env}
    assert by_name["LOG"] == {"name": "LOG", "value": "1"}
    for name in ("API_TOKEN", "DB_PASSWORD", "SHIPYARD_SERVER_AUTH_TOKEN"):
        ref = by_name[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == service.secret == f"{service.resource_name}-shipyard"

    # The Secret holds the values, is owned by the resource, and is the only place.
    secret = cluster.get("v1", "secrets", NAMESPACE, service.secret)
    assert secret is not None
    data = _secret_data(secret)
    assert data["env-API_TOKEN"] == API_TOKEN and data["env-DB_PASSWORD"] == DB_PASSWORD
    basic = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    assert json.loads(data["headers"]) == {"Authorization": f"Basic {basic}"}
    assert data["https-host"] == "models.example.test"
    assert data["models.example.test-headers"] == data["headers"]
    assert len(data["auth-token"]) >= 32
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == (resource["kind"], resource["metadata"]["name"])
    assert owner["uid"] == resource["metadata"]["uid"]

    everything_but_the_secret = json.dumps(
        [
            cluster.history(*RESOURCES[flavor], service.resource_name),
            cluster.items("v1", "serviceaccounts"),
        ],
        default=lambda part: dict(part),  # kmock's versions are mappings
    )
    written = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    shown = cli("model-deployer", "models", "describe", service.uuid[:8]) + cli(
        "model-deployer", "models", "list", "--output", "json"
    )
    for value in (PASSWORD, API_TOKEN, DB_PASSWORD, data["auth-token"]):
        assert value not in everything_but_the_secret
        assert value.encode() not in written  # store.db, service files, logs
        assert value not in shown

    # A redeploy of the same config is a no-op; the token survives an update.
    assert deployer.deploy_model(_config(flavor), timeout=60).uuid == service.uuid
    with cluster.controller(*RESOURCES[flavor], operator):
        changed = {**_config(flavor), "env": {**_config(flavor)["env"], "LOG": "2"}}
        deployer.deploy_model(changed, timeout=60)
    again = cluster.get("v1", "secrets", NAMESPACE, service.secret)
    assert again is not None and _secret_data(again)["auth-token"] == data["auth-token"]

    deployer.delete_model_server(service.uuid)
    assert cluster.get("v1", "secrets", NAMESPACE, service.secret) is None


def test_a_dry_run_shows_the_secret_without_its_values(
    home: Path, store: Store, cluster: Cluster, tmp_path: Path
) -> None:
    deployer = _deployer("kserve", cluster, tmp_path / "bucket")
    manifests = deployer.render_deployment(_config("kserve"))
    printed = json.dumps(manifests)
    assert PASSWORD not in printed and DB_PASSWORD not in printed
    secret = manifests[0]
    # Key names only: applied by hand it holds no guessable token.
    assert secret["kind"] == "Secret" and "data" not in secret and "stringData" not in secret
    keys = secret["metadata"]["annotations"]["shipyard.dev/secret-keys"].split(",")
    assert {"auth-token", "env-API_TOKEN", "env-DB_PASSWORD", "headers"} <= set(keys)
    assert cluster.items("v1", "secrets") == []  # nothing was sent


def test_a_credential_in_the_query_string_is_refused_naming_the_way_that_works(
    home: Path, store: Store, cluster: Cluster, tmp_path: Path
) -> None:
    deployer = _deployer("kserve", cluster, tmp_path / "bucket")
    config = {**_config("kserve"), "model_uri": f"https://host.test/m?token={PASSWORD}"}
    with pytest.raises(DeploymentError, match="--secret_name") as err:
        deployer.deploy_model(config, timeout=10)
    assert PASSWORD not in str(err.value)
    assert cluster.items(*RESOURCES["kserve"]) == [] and cluster.items("v1", "secrets") == []

"""Issue 11 on the ``ray`` flavor: a remote pickle needs the caller's trust, checked where
the replica loads it; credentials in its URI reach the replica but never a Ray actor's
arguments, Serve's config or checkpoint, the registry or any file of SHIPYARD_HOME; the
replica requires the service's bearer token (health stays open) and ``predict`` sends it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from shipyard.deployers.ray import RayDeploymentConfig, RayModelDeployer, RayModelServer
from shipyard.deployers.testing import files_holding
from shipyard.errors import DeploymentError
from shipyard.store import Store

from .conftest import PASSWORD, RAY_WARNINGS, USER, Cluster, RemoteModel

pytestmark = RAY_WARNINGS


def _config(uri: str, **extra: object) -> RayDeploymentConfig:
    return RayDeploymentConfig(
        model_uri=uri,
        model_name="remote",
        num_replicas=1,
        max_constructor_retry_count=1,
        ray_actor_options={"num_cpus": 0.25},  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def _v2(rows: list[list[float]]) -> dict[str, object]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), len(rows[0])],
                "datatype": "FP64",
                "data": [v for row in rows for v in row],
            }
        ]
    }


def _what_ray_keeps() -> str:
    """Everything the cluster shows or keeps about its actors and Serve applications:
    the GCS's actor table (what the state API lists), Serve's details of every application
    (deployment options), and Serve's checkpoint in the GCS (the replicas' pickled
    constructor arguments)."""
    from ray._private.state import actors
    from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_list
    from ray.serve._private.storage.kv_store import SERVE_INTERNAL_KV_NAMESPACE
    from ray.serve.context import _get_global_client

    parts = [json.dumps(actors(), default=str)]
    parts.append(json.dumps(_get_global_client().get_serve_details(), default=str))
    for key in _internal_kv_list(b"", namespace=SERVE_INTERNAL_KV_NAMESPACE):
        value = _internal_kv_get(key, namespace=SERVE_INTERNAL_KV_NAMESPACE) or b""
        parts.append(bytes(value).decode("latin-1"))
    return "\n".join(parts)


@pytest.mark.timeout(900)
def test_remote_pickle_needs_trust_and_its_credentials_stay_off_ray(
    home: Path, ray_stack: Cluster, remote_model: RemoteModel
) -> None:
    deployer = RayModelDeployer.get_active_model_deployer()
    # Not trusted: refused where the replica loads it, with the way out, password masked.
    with pytest.raises(DeploymentError) as refused:
        deployer.deploy_model(_config(remote_model.uri()), timeout=240)
    message = str(refused.value)
    assert "--trust" in message and "a joblib file" in message, message
    assert PASSWORD not in message
    assert deployer.find_model_server(model_name="remote") == []

    service = deployer.deploy_model(_config(remote_model.uri(), trusted=True), timeout=240)
    assert isinstance(service, RayModelServer) and service.is_running
    assert remote_model.authorized  # the replica fetched the model with the password
    rows = remote_model.rows.tolist()
    assert [int(v) for v in service.predict(remote_model.rows)] == remote_model.expected

    # The replica requires the service's token; health stays open for probes.
    url = service.prediction_url
    assert url is not None and service.base_url is not None
    assert service.request_headers()["authorization"].startswith("Bearer ")
    assert httpx.post(url, json=_v2(rows), timeout=30).status_code == 401
    wrong = {"authorization": "Bearer not-the-token"}
    assert httpx.post(url, json=_v2(rows), headers=wrong, timeout=30).status_code == 401
    assert httpx.get(f"{service.base_url}/v2/health/ready", timeout=30).status_code == 200
    answer = httpx.post(url, json=_v2(rows), headers=service.request_headers(), timeout=30)
    assert answer.status_code == 200, answer.text

    # The password is nowhere Ray shows or keeps things, nor in the registry or the home.
    kept = _what_ray_keeps()
    assert service.app_name in kept  # (the check reads the right things)
    assert PASSWORD not in kept
    token = service.request_headers()["authorization"].removeprefix("Bearer ")
    assert token not in kept
    assert files_holding(home, PASSWORD.encode()) == []
    with Store.open() as store:
        (record,) = store.find_services(model_name="remote")
        assert "{{secret.uri-" in record.model_uri and PASSWORD not in record.body
        assert token not in record.body
    info = json.dumps(deployer.get_model_server_info(service))
    assert PASSWORD not in info and USER not in info

    # Deleting the application forgets its secrets on the cluster too.
    from ray.experimental.internal_kv import _internal_kv_list

    from shipyard._ray.secrets import NAMESPACE

    assert _internal_kv_list(f"{service.app_name}/", namespace=NAMESPACE)
    deployer.delete_model_server(service.uuid, timeout=120)
    assert _internal_kv_list(f"{service.app_name}/", namespace=NAMESPACE) == []

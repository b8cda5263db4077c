"""The ``ray`` flavor on a real two-node cluster: deploy, predict over V2 and /invocations
under the route prefix, status from Serve, rolling update, a broken model refused."""

from __future__ import annotations

import threading

import httpx
import pytest

from shipyard.deployers.ray import RayDeploymentConfig, RayModelDeployer, RayModelServer
from shipyard.deployers.testing import DisagreeingModels as Models
from shipyard.errors import DeploymentError
from shipyard.services import ServiceState

from .conftest import RAY_WARNINGS, Cluster

pytestmark = RAY_WARNINGS


def _config(model_uri: str, **extra: object) -> RayDeploymentConfig:
    return RayDeploymentConfig(
        model_uri=model_uri,
        model_name="clf",
        pipeline_name="train",
        pipeline_step_name="deploy",
        num_replicas=2,
        # One failed start is enough to refuse the broken model: the test stays short.
        max_constructor_retry_count=1,
        ray_actor_options={"num_cpus": 0.25},  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def _replica_nodes(app_name: str) -> set[str]:
    """The nodes that run a live replica of the application (from the GCS's actor table)."""
    from ray._private.state import actors

    found = actors().values()
    nodes = {
        info["Address"]["NodeID"]
        for info in found
        if info["State"] == "ALIVE" and app_name in str(info.get("Name", ""))
    }
    assert nodes, [(i.get("Name"), i["ActorClassName"], i["State"]) for i in found]
    return nodes


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


def _check_grpc(
    service: RayModelServer, rows: list[list[float]], expected: tuple[int, ...]
) -> None:
    """The V2 gRPC service through Serve's gRPC proxy, routed by the application metadata."""
    import grpc

    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc

    assert service.grpc_address is not None
    open_route = (("application", service.app_name),)
    route = (*open_route, *service.request_headers().items())

    def request(data: list[list[float]]) -> pb.ModelInferRequest:
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="input-0",
            datatype="FP64",
            shape=[len(data), len(data[0])],
            contents=pb.InferTensorContents(fp64_contents=[v for row in data for v in row]),
        )
        return pb.ModelInferRequest(model_name="clf", inputs=[tensor])

    with grpc.insecure_channel(service.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        ready = stub.ModelReady(pb.ModelReadyRequest(name="clf"), metadata=route, timeout=30)
        assert ready.ready
        # The token is required as on `shipyard serve`; the health methods stay open.
        assert stub.ServerReady(pb.ServerReadyRequest(), metadata=open_route, timeout=30).ready
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(request(rows), metadata=open_route, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reply = stub.ModelInfer(request(rows), metadata=route, timeout=30)
        assert tuple(reply.outputs[0].contents.int64_contents) == expected
        # A malformed request: the status and message `shipyard serve` gives.
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request([[1.0]]), metadata=route, timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "expected" in str(caught.value.details())


class Client(threading.Thread):
    """Sends requests in a loop until stopped, counting answers and failures."""

    def __init__(self, url: str, rows: list[list[float]], headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = headers
        self.body = _v2(rows)
        self.stop = threading.Event()
        self.answers: list[tuple[int, ...]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=30, headers=self.headers) as client:
            while not self.stop.is_set() and len(self.answers) + len(self.failures) < 20_000:
                try:
                    response = client.post(self.url, json=self.body)
                except httpx.HTTPError as err:
                    self.failures.append(repr(err))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    self.answers.append(tuple(response.json()["outputs"][0]["data"]))


@pytest.mark.timeout(1200)
def test_deploy_predict_update_and_refuse_a_broken_model(
    ray_stack: Cluster, models: Models
) -> None:
    deployer = RayModelDeployer.get_active_model_deployer()
    rows = models.rows.tolist()
    service = deployer.deploy_model(_config(models.a), timeout=240)
    assert isinstance(service, RayModelServer)
    assert service.is_running
    url = service.prediction_url
    assert url is not None and url.startswith(f"http://127.0.0.1:{ray_stack.serve_port}/")
    assert service.route_prefix in url

    import shipyard

    expected_a = tuple(int(v) for v in shipyard.load_model(models.a).predict(models.rows))
    expected_b = tuple(1 - v for v in expected_a)
    # The replicas require the service's token (health stays open); predict sends it.
    auth = service.request_headers()
    assert httpx.post(url, json=_v2(rows), timeout=30).status_code == 401
    assert httpx.get(f"{service.base_url}/v2/health/ready", timeout=30).status_code == 200
    assert tuple(int(v) for v in service.predict(models.rows)) == expected_a
    answer = httpx.post(url, json=_v2(rows), headers=auth, timeout=30).json()
    assert tuple(answer["outputs"][0]["data"]) == expected_a
    invocations = httpx.post(
        f"{service.base_url}/invocations", json={"inputs": rows}, headers=auth, timeout=30
    ).json()
    assert tuple(invocations["predictions"]) == expected_a
    bad = httpx.post(
        f"{service.base_url}/invocations", json={"inputs": [[1.0]]}, headers=auth, timeout=30
    )
    assert bad.status_code == 400 and "expected" in bad.json()["error"]

    _check_grpc(service, rows, expected_a)

    # Two replicas, two nodes: Serve spreads them, one on each.
    assert len(_replica_nodes(service.app_name)) == 2

    # Rolling update in place under load: same UUID and URL, no failed request.
    client = Client(url, rows, auth)
    client.start()
    try:
        updated = deployer.deploy_model(_config(models.b), timeout=240)
        assert updated.uuid == service.uuid and updated.prediction_url == url
        # A model that cannot load: refused, the old replicas keep serving throughout.
        with pytest.raises(DeploymentError, match="previous model keeps serving"):
            deployer.deploy_model(_config(models.broken), timeout=240)
    finally:
        client.stop.set()
        client.join(timeout=60)
    assert client.failures == []
    assert set(client.answers) <= {expected_a, expected_b}
    assert client.answers[-1] == expected_b
    again = deployer.get_model_server(service.uuid)
    assert again.is_running
    assert "previous model keeps serving" in again.status.last_error
    assert again.config.model_uri == models.b

    from typer.testing import CliRunner

    from shipyard.cli.main import app

    listed = CliRunner().invoke(app, ["model-deployer", "models", "list", "--output", "json"])
    assert listed.exit_code == 0, listed.output
    assert service.uuid in listed.output and url in listed.output

    logs = list(deployer.get_model_server_logs(service.uuid, tail=50))
    assert any("replica_" in line for line in logs)

    deployer.stop_model_server(service.uuid, timeout=120)
    stopped = deployer.get_model_server(service.uuid)
    assert stopped.status.state == ServiceState.INACTIVE
    assert httpx.post(url, json=_v2(rows), headers=auth, timeout=30).status_code == 404
    deployer.start_model_server(service.uuid, timeout=240)
    assert deployer.get_model_server(service.uuid).is_running
    deployer.delete_model_server(service.uuid, timeout=120)
    assert deployer.find_model_server(model_name="clf") == []

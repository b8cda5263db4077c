"""Bearer-token auth on real server processes: HTTP and gRPC want the token when one is
set, health and metrics stay open (configurable), and a non-loopback bind without a token
is refused unless --insecure."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from shipyard.errors import ConfigError
from shipyard.serving.__main__ import build_config
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.serving.supervisor import Supervisor
from shipyard.testing import ServerProcess, start_server

TOKEN = "s3cret-token-for-tests"
BODY = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def guarded(models_dir: Path, token_file: Path) -> Iterator[ServerProcess]:
    args = ["--auth-token-file", str(token_file)]
    with start_server(models_dir / "forest", workers=1, grpc=True, args=args) as process:
        yield process


def _infer(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/forest/infer", json=BODY, headers=headers, timeout=30)


def test_http_needs_the_token(guarded: ServerProcess) -> None:
    refused = _infer(guarded.url)
    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token" in refused.json()["error"]
    wrong = _infer(guarded.url, {"authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    basic = _infer(guarded.url, {"authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    for path in ("/v2", "/v2/models/forest", "/openapi.json"):
        assert httpx.get(f"{guarded.url}{path}", timeout=30).status_code == 401, path
    accepted = _infer(guarded.url, {"authorization": f"Bearer {TOKEN}"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["outputs"][0]["shape"] == [1]
    # The scheme is case-insensitive (RFC 6750 follows RFC 7235).
    assert _infer(guarded.url, {"authorization": f"bearer {TOKEN}"}).status_code == 200


def test_health_and_metrics_stay_open(guarded: ServerProcess) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics"):
        assert httpx.get(f"{guarded.url}{path}", timeout=30).status_code == 200, path


def _grpc_request() -> Any:
    request = pb.ModelInferRequest(model_name="forest")
    request.inputs.add(name="input-0", datatype="FP64", shape=[1, 4])
    request.raw_input_contents.append(np.ones((1, 4)).astype("<f8").tobytes())
    return request


def test_grpc_needs_the_token(guarded: ServerProcess) -> None:
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        stub: Any = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(_grpc_request(), timeout=30)
        error: Any = caught.value
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
        with pytest.raises(grpc.RpcError) as wrong:
            stub.ModelInfer(_grpc_request(), timeout=30, metadata=[("authorization", "Bearer x")])
        assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
        metadata = [("authorization", f"Bearer {TOKEN}")]
        answer = stub.ModelInfer(_grpc_request(), timeout=30, metadata=metadata)
        assert list(answer.outputs[0].shape) == [1]
        # Health is open on gRPC too, as on HTTP.
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready


def test_token_from_the_environment_and_no_open_paths(models_dir: Path) -> None:
    env = {"SHIPYARD_SERVER_AUTH_TOKEN": TOKEN}
    with start_server(models_dir / "forest", env=env, args=["--open-paths", ""]) as server:
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=30).status_code == 401
        assert _infer(server.url).status_code == 401
        ok = _infer(server.url, {"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, ok.text
        # The token is in no worker's argv or config: only in their environment.
        assert TOKEN not in server.log()


def test_no_token_no_auth(models_dir: Path) -> None:
    """Without a token (the default) nothing changes: loopback servers answer anyone."""
    with start_server(models_dir / "forest") as server:
        assert _infer(server.url).status_code == 200


def test_non_loopback_bind_without_auth_is_refused(models_dir: Path) -> None:
    command = [sys.executable, "-m", "shipyard.serving", str(models_dir / "forest")]
    done = subprocess.run(
        [*command, "--host", "0.0.0.0", "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    line = done.stderr.strip()
    assert "Refusing to serve on 0.0.0.0 without authentication" in line, line
    assert "--auth-token-file" in line and "--insecure" in line
    assert len(line.splitlines()) == 1


def test_insecure_or_a_token_allow_a_non_loopback_bind(
    models_dir: Path, token_file: Path, tmp_path: Path
) -> None:
    # Checked without binding anything (tests bind 127.0.0.1 only): the refusal is made
    # when the supervisor is built, before any port is bound.
    model = [str(models_dir / "forest")]

    def supervisor(**options: Any) -> Supervisor:
        return Supervisor(build_config(model, run_dir=tmp_path, **options))

    with pytest.raises(ConfigError, match=r"Refusing to serve on 10\.1\.2\.3"):
        supervisor(host="10.1.2.3")
    supervisor(host="0.0.0.0", insecure=True)
    assert supervisor(host="0.0.0.0", auth_token_file=token_file).auth_token == TOKEN
    supervisor(host="::1")  # loopback needs neither
    with pytest.raises(ConfigError, match="Cannot read the auth token file"):
        supervisor(auth_token_file=token_file.parent / "missing")

"""The model directory the kserve/seldon flavors upload, loaded and answered for real by
the runtimes the pods run: MLServer + mlserver-sklearn as KServe's V2 sklearn runtime
and Seldon's SKLEARN_SERVER start it, and KServe's own ``kserve.ModelServer`` (V1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

import shipyard
from shipyard.deployers.kserve import KServeDeploymentConfig, KServeModelDeployer
from shipyard.deployers.kserve.config import KServeModelDeployerConfig
from shipyard.store import Store
from shipyard.testing import free_port

STORE_URI = "s3://models-bucket/shipyard"


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return x, y


@pytest.fixture
def uploaded(store: Store, tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> Path:
    """What the kserve flavor uploads for a scikit-learn model saved with Shipyard."""
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    model_dir = shipyard.save_model(
        LogisticRegression(max_iter=500).fit(x, y), tmp_path / "iris", input_example=x[:2]
    )
    config = KServeModelDeployerConfig(
        model_store=str(tmp_path / "bucket"), model_store_uri=STORE_URI
    )
    deployer = KServeModelDeployer(name="k", id="k-id", flavor="kserve", config=config, store=store)
    service = deployer.new_service(
        KServeDeploymentConfig(model_uri=str(model_dir), model_name="iris")
    )
    assert deployer.render_deployment({"model_uri": str(model_dir), "model_name": "iris"})[0][
        "spec"
    ]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}
    return tmp_path / "bucket" / service.storage_uri.removeprefix(STORE_URI + "/")


@contextmanager
def running(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    """Start ``command`` in its own process group; wait until ``ready_url`` answers 200;
    kill the group (by its PID) at the end."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"{command[0]} exited {process.returncode}:\n{log.read_text()}"
                )
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{ready_url} not ready after 120 s:\n{log.read_text()}")
            time.sleep(0.25)
        yield
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _v2(rows: np.ndarray) -> dict[str, object]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }


def _mlserver_env(tmp_path: Path) -> tuple[dict[str, str], int]:
    http = free_port()
    env = {
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": str(http),
        "MLSERVER_GRPC_PORT": str(free_port()),
        "MLSERVER_METRICS_PORT": str(free_port()),
        # MLServer 1.7.1's worker pool needs uvloop 0.21; in-process inference avoids it.
        "MLSERVER_PARALLEL_WORKERS": "0",
        "MLSERVER_METRICS_ENDPOINT": "",
    }
    return env, http


def test_mlserver_loads_the_upload_from_its_model_settings(
    uploaded: Path, tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    """Seldon's SKLEARN_SERVER (protocol v2) and any MLServer find model-settings.json."""
    x, _ = iris
    env, port = _mlserver_env(tmp_path)
    mlserver = str(Path(sys.executable).with_name("mlserver"))
    url = f"http://127.0.0.1:{port}"
    with running(
        [mlserver, "start", str(uploaded)],
        env,
        f"{url}/v2/models/iris/ready",
        tmp_path / "mlserver.log",
    ):
        answer = httpx.post(f"{url}/v2/models/iris/infer", json=_v2(x[:5]), timeout=30)
    assert answer.status_code == 200, answer.text
    expected = shipyard.load_model(str(uploaded)).predict(x[:5])
    assert answer.json()["outputs"][0]["data"] == np.asarray(expected).tolist()


def test_mlserver_loads_the_upload_as_kserves_v2_runtime_configures_it(
    uploaded: Path, tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    """KServe's kserve-mlserver runtime: the model from environment variables, the
    directory at MLSERVER_MODEL_URI (/mnt/models in the pod), named after the service."""
    x, _ = iris
    env, port = _mlserver_env(tmp_path)
    env.update(
        MLSERVER_MODEL_IMPLEMENTATION="mlserver_sklearn.SKLearnModel",
        MLSERVER_MODEL_NAME="iris-0a1b2c3d",
        MLSERVER_MODEL_URI=str(uploaded),
    )
    empty = tmp_path / "repository"
    empty.mkdir()
    mlserver = str(Path(sys.executable).with_name("mlserver"))
    url = f"http://127.0.0.1:{port}"
    ready = f"{url}/v2/models/iris-0a1b2c3d/ready"
    with running([mlserver, "start", str(empty)], env, ready, tmp_path / "mlserver.log"):
        answer = httpx.post(f"{url}/v2/models/iris-0a1b2c3d/infer", json=_v2(x[:3]), timeout=30)
    assert answer.status_code == 200, answer.text
    expected = shipyard.load_model(str(uploaded)).predict(x[:3])
    assert answer.json()["outputs"][0]["data"] == np.asarray(expected).tolist()


def test_kserve_model_server_answers_v1_and_v2(
    uploaded: Path, tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = iris
    port = free_port()
    command = [
        sys.executable, "-m", "shipyard.deployers.kserve.model_server",
        "--model_dir", str(uploaded), "--model_name", "iris",
        "--http_port", str(port), "--host", "127.0.0.1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running(command, {}, f"{url}/v1/models/iris", tmp_path / "kserve.log"):
        v1 = httpx.post(
            f"{url}/v1/models/iris:predict", json={"instances": x[:4].tolist()}, timeout=30
        )
        v2 = httpx.post(f"{url}/v2/models/iris/infer", json=_v2(x[:4]), timeout=30)
    expected = np.asarray(shipyard.load_model(str(uploaded)).predict(x[:4])).tolist()
    assert v1.status_code == 200, v1.text
    assert v1.json() == {"predictions": expected}
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == expected


def test_kserve_model_server_applies_the_origins_trust_rule(uploaded: Path, tmp_path: Path) -> None:
    """The pod's env says the files came from a remote URI and nobody trusted them: the
    joblib model in /mnt/models is refused, not loaded as a local file."""
    command = [
        sys.executable, "-m", "shipyard.deployers.kserve.model_server",
        "--model_dir", str(uploaded), "--model_name", "iris",
        "--http_port", str(free_port()), "--host", "127.0.0.1",
    ]  # fmt: skip
    env = {"SHIPYARD_MODEL_ORIGIN": "s3://other-bucket/iris", "SHIPYARD_MODEL_TRUSTED": "false"}
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert "Refusing to load s3://other-bucket/iris" in done.stdout + done.stderr

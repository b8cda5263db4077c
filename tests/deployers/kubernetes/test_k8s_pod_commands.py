"""The commands the pods run for a custom predictor — the ``shipyard``
ClusterServingRuntime's container args and the Seldon custom container's args — run on
the directory the flavor uploads (what the storage initializer puts in /mnt/models):
the model loads with its own predictor code and answers V2 requests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import shipyard
from shipyard.deployers.kserve import (
    KServeDeploymentConfig,
    KServeModelDeployer,
    KServeModelDeployerConfig,
    cluster_serving_runtime,
)
from shipyard.deployers.seldon import SeldonModelDeployer, SeldonModelDeployerConfig
from shipyard.store import Store
from shipyard.testing import free_port

from .k8s_predictors import Scaled

STORE_URI = "s3://models-bucket/shipyard"
ROWS = np.array([[1.0, 2.0, 3.0], [10.0, 0.0, 5.5]])


@pytest.fixture
def uploaded(store: Store, tmp_path: Path) -> tuple[Path, str]:
    """(the uploaded folder, the served name) of a custom-predictor model."""
    model_dir = shipyard.save_model(None, tmp_path / "scaled", predictor=Scaled, input_example=ROWS)
    config = KServeModelDeployerConfig(
        model_store=str(tmp_path / "bucket"), model_store_uri=STORE_URI, image="img:1"
    )
    deployer = KServeModelDeployer(name="k", id="k", flavor="kserve", config=config, store=store)
    service = deployer.new_service(KServeDeploymentConfig(model_uri=str(model_dir), model_name="s"))
    *_, isvc = deployer.render_deployment({"model_uri": str(model_dir), "model_name": "s"})
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "shipyard"
    folder = tmp_path / "bucket" / service.storage_uri.removeprefix(STORE_URI + "/")
    assert not (folder / "model-settings.json").exists()  # not an MLServer model
    return folder, "s-0a1b2c3d"


def _kserve_args(name: str) -> list[str]:
    container = cluster_serving_runtime("img:1")["spec"]["containers"][0]
    args: list[str] = container["args"]
    return [name if arg == "{{.Name}}" else arg for arg in args]


def _seldon_args(store: Store, tmp_path: Path, name: str) -> list[str]:
    config = SeldonModelDeployerConfig(model_store=str(tmp_path / "b2"), image="img:1")
    deployer = SeldonModelDeployer(name="s", id="s", flavor="seldon", config=config, store=store)
    *_, sdep = deployer.render_deployment(
        {"model_uri": "s3://x/y", "model_name": "s", "implementation": "custom"}
    )
    predictor = sdep["spec"]["predictors"][0]
    container = predictor["componentSpecs"][0]["spec"]["containers"][0]
    args: list[str] = container["args"]
    return [name if arg == container["name"] else arg for arg in args]


@pytest.mark.parametrize("platform", ["kserve", "seldon"])
def test_the_pod_command_serves_the_uploaded_custom_predictor(
    store: Store, tmp_path: Path, uploaded: tuple[Path, str], platform: str
) -> None:
    folder, name = uploaded
    args = _kserve_args(name) if platform == "kserve" else _seldon_args(store, tmp_path, name)
    assert args[:2] == ["serve", "/mnt/models"]
    # The pod binds 0.0.0.0 with a token from its Secret (see test_k8s_pod_auth); here,
    # on loopback, the server runs without one.
    assert "--insecure" not in args and "0.0.0.0" in args
    http, grpc = free_port(), free_port()
    pod_ports = {"8080", "9000"}
    ports = {
        arg: str(http) if arg in pod_ports else str(grpc)
        for arg in ("8080", "8081", "9000", "9500")
    }
    argv = [sys.executable, "-m", "shipyard.cli.main"] + [
        str(folder)
        if arg == "/mnt/models"
        else "127.0.0.1"
        if arg == "0.0.0.0"
        else ports.get(arg, arg)
        for arg in args
    ]
    log_path = tmp_path / "pod.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{http}"
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/v2/models/{name}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        body: dict[str, Any] = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 3],
                    "datatype": "FP64",
                    "data": ROWS.ravel().tolist(),
                }
            ]
        }
        answer = httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == [0.6, 1.55]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

"""Every path that takes a model URI keeps its credentials out of argv and out of files:
`shipyard serve`, `shipyard model predict`, `shipyard batch predict` (local engine) take a
`{{secret.NAME}}` reference instead of the URI, and a batch job's files (its manifest, kept
for `--resume`) hold no credential. The model is fetched from a 127.0.0.1 server that
requires basic auth, so the credential is really used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

import shipyard
import shipyard.batch
from shipyard.deployers.testing import files_holding
from shipyard.errors import ShipyardError
from shipyard.store import Store
from shipyard.testing import free_port, wait_until

from .test_uri_credentials import PASSWORD, AuthServer, _command_lines, auth_server

__all__ = ["auth_server"]  # the fixture, shared with test_uri_credentials

_SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def _run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [*_SHIPYARD, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
    )


def _input(tmp_path: Path, auth_server: AuthServer) -> Path:
    path = tmp_path / "rows.parquet"
    pd.DataFrame(auth_server.rows, columns=["a", "b", "c", "d"]).to_parquet(path)
    return path


def test_a_batch_job_writes_no_credential_and_a_failed_load_leaves_no_job(
    home: Path, tmp_path: Path, auth_server: AuthServer
) -> None:
    rows = _input(tmp_path, auth_server)
    out = tmp_path / "out" / "preds.parquet"
    wrong = "Wrong-batch-5a1e-test-only"
    with pytest.raises(ShipyardError) as info:
        shipyard.batch.predict(auth_server.uri(wrong), str(rows), str(out))
    assert wrong not in str(info.value) and "http://***@127.0.0.1" in str(info.value)
    assert "refused access (HTTP 401): check the credentials" in str(info.value)
    assert files_holding(tmp_path, wrong.encode()) == []
    # Nothing was started, so the same command with the right password just runs.
    summary = shipyard.batch.predict(auth_server.uri(), str(rows), str(out))
    assert summary.rows == len(auth_server.rows)
    assert files_holding(tmp_path, PASSWORD.encode()) == []
    assert files_holding(home, PASSWORD.encode()) == []


def test_cli_paths_take_a_secret_reference_instead_of_the_uri(
    home: Path, tmp_path: Path, auth_server: AuthServer
) -> None:
    made = _run(home, "secret", "create", "model-uri", stdin=auth_server.uri())
    assert made.returncode == 0, made.stderr
    ref = "{{secret.model-uri}}"
    row = json.dumps(auth_server.rows[:1].tolist())

    predicted = _run(home, "model", "predict", ref, "--data", row)
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["predictions"]["label"] in ([0], [1])

    rows = _input(tmp_path, auth_server)
    out = tmp_path / "preds.parquet"
    batch = _run(home, "batch", "predict", ref, "--input", str(rows), "--output", str(out))
    assert batch.returncode == 0, batch.stderr
    assert len(pd.read_parquet(out)) == len(auth_server.rows)

    deployed = _run(home, "deploy", ref, "--name", "clf-ref", "-O", "json")
    assert deployed.returncode == 0, deployed.stderr
    daemon = json.loads(deployed.stdout)
    assert daemon["model_uri"].startswith("http://***@") and PASSWORD not in deployed.stdout
    with Store.open() as store:
        (record,) = store.find_services(model_name="clf-ref")
        assert "{{secret.uri-" in record.model_uri
    described = _run(home, "model-deployer", "models", "describe", "clf-ref", "-O", "json")
    assert described.returncode == 0, described.stderr
    lines = _command_lines(int(json.loads(described.stdout)["info"]["DAEMON_PID"]))
    assert lines and not [line for line in lines if PASSWORD in line]
    stopped = _run(home, "model-deployer", "models", "delete", "clf-ref", "--yes")
    assert stopped.returncode == 0, stopped.stderr

    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [*_SHIPYARD, "serve", ref, "--name", "clf", "--port", str(port), "--no-grpc"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"serve exited: {log.read_text()}")
            try:
                return httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, "shipyard serve {{secret.model-uri}} ready", timeout=180)
        body = {
            "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0.1] * 4}]
        }
        answer = httpx.post(f"{url}/v2/models/clf/infer", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        lines = _command_lines(server.pid)
        assert any(ref in line for line in lines), lines
        assert not [line for line in lines if PASSWORD in line]
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert PASSWORD not in log.read_text()
    assert files_holding(home, PASSWORD.encode()) == []
    assert files_holding(tmp_path, PASSWORD.encode()) == []


def test_load_model_names_a_secret_reference_and_takes_its_value(
    home: Path, auth_server: AuthServer
) -> None:
    from shipyard.errors import ModelNotFoundError
    from shipyard.secrets import SecretStore, get_secret, resolve_references

    with Store.open() as store:
        SecretStore(store).set("model-uri", auth_server.uri())
    with pytest.raises(ModelNotFoundError, match="holds a secret reference"):
        shipyard.load_model("{{secret.model-uri}}")
    loaded = shipyard.load_model(resolve_references("{{secret.model-uri}}", get_secret))
    assert len(loaded.predict(auth_server.rows.astype("float32"))["label"]) == len(auth_server.rows)

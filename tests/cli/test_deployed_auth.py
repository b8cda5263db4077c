"""A locally deployed model server requires its own bearer token: `shipyard predict`,
`Service.predict`, batch `--service` and the health checks send it; a client without it
gets 401; `describe` names the token file and never shows the token."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import numpy as np
import pytest

import shipyard as shipyard_pkg
from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer

from .conftest import ok, shipyard


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(
        n_samples=100, n_features=3, n_informative=2, n_redundant=0, random_state=2
    )
    path = tmp_path_factory.mktemp("m") / "clf"
    shipyard_pkg.save_model(LogisticRegression().fit(x, y), path, input_example=x[:2])
    return path


ROWS = [[0.5, -1.0, 2.0], [-2.0, 0.3, 0.1]]


def test_a_deployed_server_wants_its_token(home: Path, model_dir: Path, tmp_path: Path) -> None:
    expected = shipyard_pkg.load_model(model_dir).predict(np.asarray(ROWS)).tolist()
    deployed = json.loads(
        ok("deploy", str(model_dir), "--name", "clf", "--workers", "1", "-O", "json")
    )
    url = deployed["prediction_url"]
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 3],
                "datatype": "FP64",
                "data": [v for row in ROWS for v in row],
            }
        ]
    }
    # Without the token: 401, and the health path stays open for probes.
    refused = httpx.post(url, json=body, timeout=30)
    assert refused.status_code == 401, refused.text
    base = url.split("/v2/")[0]
    assert httpx.get(f"{base}/v2/health/ready", timeout=30).status_code == 200

    # describe names the token file (0600, in the run dir), never the token.
    described = json.loads(ok("model-deployer", "models", "describe", "clf", "-O", "json"))
    token_file = Path(described["info"]["AUTH_TOKEN_FILE"])
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    shown = shipyard(home, "model-deployer", "models", "describe", "clf")
    assert shown.returncode == 0, shown.stderr
    assert token not in shown.stdout and token not in json.dumps(described)
    # The token is not in the service record or the server's argv either.
    for record in home.rglob("service.json"):
        assert token not in record.read_text()
    assert token not in (token_file.parent / "service.log").read_text()

    # A user's own client with the token (curl -H "Authorization: Bearer $(cat FILE)").
    allowed = httpx.post(url, json=body, headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["outputs"][0]["data"] == expected

    # `shipyard predict`, as its own process, sends the token.
    answered = shipyard(home, "predict", "clf", "--data", json.dumps(ROWS))
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout) == {"predictions": expected}

    # Service.predict and a batch job through the service send it too.
    deployer = LocalModelDeployer.get_active_model_deployer()
    [service] = deployer.find_model_server(model_name="clf")
    assert service.is_running
    assert service.predict(ROWS).tolist() == expected
    import pandas as pd

    from shipyard.batch import predict

    source = tmp_path / "rows.parquet"
    pd.DataFrame(ROWS, columns=["a", "b", "c"]).to_parquet(source)
    out = tmp_path / "out.parquet"
    predict(None, str(source), str(out), service=service)
    assert pd.read_parquet(out).iloc[:, -1].tolist() == expected


def test_auth_can_be_turned_off_per_server(home: Path, model_dir: Path) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    service = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=str(model_dir), model_name="open", workers=1, auth=False),
        timeout=300,
    )
    body = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": ROWS[0]}]}
    answer = httpx.post(str(service.prediction_url), json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert service.request_headers() == {}

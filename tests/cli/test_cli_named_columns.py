"""Named columns everywhere: a LightGBM model fitted on a DataFrame answers the same for
reordered columns from Python, from a deployed service and from the CLI; a null in a
one-row request is NaN; the CLI takes records, columns, MLflow bodies and files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from shipyard.deployers.testing import isolated_home, kill_services_under
from shipyard.errors import InvalidInputError
from shipyard.models import load_model, save_model

from .conftest import one_red_line, shipyard

COLUMNS = ["radius", "texture", "area"]


@dataclass(frozen=True)
class Deployed:
    home: Path
    model: Path
    rows: pd.DataFrame
    expected: list[float]
    service: Any


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    lgb = pytest.importorskip("lightgbm")
    root = tmp_path_factory.mktemp("named")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=COLUMNS)
    # Each column matters differently, so taking them by position changes the answer.
    target = 3 * frame["radius"] - frame["texture"] + 0.1 * frame["area"]
    booster = lgb.train(
        {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5},
        lgb.Dataset(frame, target),
        num_boost_round=20,
    )
    model = save_model(booster, root / "tumour", input_example=frame[:2])
    rows = frame[:3]
    expected = [float(v) for v in booster.predict(rows)]
    with isolated_home(root / "home") as home:
        from shipyard.deployers import ModelDeployer
        from shipyard.deployers.local import LocalDeploymentConfig

        try:
            deployer = ModelDeployer.get_active_model_deployer()
            service = deployer.deploy_model(
                LocalDeploymentConfig(model_uri=str(model), model_name="tumour"), timeout=120
            )
            yield Deployed(home, model, rows, expected, service)
        finally:
            kill_services_under(home)


def test_load_model_matches_columns_by_name(deployed: Deployed) -> None:
    model = load_model(deployed.model)
    reordered = deployed.rows[["area", "radius", "texture"]]
    np.testing.assert_allclose(model.predict(reordered), deployed.expected)
    with pytest.raises(InvalidInputError, match=r"lacks column.*'texture'"):
        model.predict(deployed.rows[["radius", "area"]])
    with pytest.raises(InvalidInputError, match=r"column.*'colour'.*not take"):
        model.predict(deployed.rows.assign(colour=1.0))


def test_service_predict_matches_columns_by_name(deployed: Deployed) -> None:
    reordered = deployed.rows[["texture", "area", "radius"]]
    np.testing.assert_allclose(deployed.service.predict(reordered), deployed.expected)


def test_a_null_in_a_one_row_request_is_nan_on_every_route(deployed: Deployed) -> None:
    model = load_model(deployed.model)
    nan_row = deployed.rows[:1].assign(radius=np.nan)
    want = [float(v) for v in model.predict(nan_row)]
    record = {"radius": None, "texture": float(nan_row["texture"].iloc[0]),
              "area": float(nan_row["area"].iloc[0])}  # fmt: skip
    base = deployed.service.endpoint.url
    headers = deployed.service.request_headers()
    bodies = [
        {"dataframe_records": [record]},
        {"dataframe_split": {"columns": list(record), "data": [list(record.values())]}},
        {"instances": [[None, record["texture"], record["area"]]]},
        {"inputs": [[None, record["texture"], record["area"]]]},
    ]
    for body in bodies:
        answer = httpx.post(f"{base}/invocations", json=body, headers=headers, timeout=30)
        assert answer.status_code == 200, (body, answer.text)
        np.testing.assert_allclose(answer.json()["predictions"], want)
    answer = httpx.post(
        f"{base}/v1/models/tumour:predict", json=bodies[2], headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], want)
    v2 = {"inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
                     for k, v in record.items()]}  # fmt: skip
    answer = httpx.post(f"{base}/v2/models/tumour/infer", json=v2, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["outputs"][0]["data"], want)
    seldon = {"data": {"names": list(record), "ndarray": [list(record.values())]}}
    answer = httpx.post(f"{base}/api/v0.1/predictions", json=seldon, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["data"]["ndarray"], want)
    np.testing.assert_allclose(deployed.service.predict(nan_row), want)


def _data_forms(rows: pd.DataFrame, tmp: Path) -> dict[str, str]:
    records = rows[["area", "texture", "radius"]].to_dict("records")
    csv = tmp / "rows.csv"
    rows[["texture", "radius", "area"]].to_csv(csv, index=False)
    body = tmp / "rows.json"
    body.write_text(json.dumps(records))
    return {
        "records": json.dumps(records),
        "columns": json.dumps(rows[["area", "radius", "texture"]].to_dict("list")),
        "dataframe_split": json.dumps({"dataframe_split": rows.to_dict("split")}),
        "dataframe_records": json.dumps({"dataframe_records": records}),
        "instances": json.dumps({"instances": rows.to_numpy().tolist()}),
        "rows": json.dumps(rows.to_numpy().tolist()),
        "csv-file": f"@{csv}",
        "json-file": f"@{body}",
    }


@pytest.mark.parametrize("command", ["predict", "model predict"])
# Eight CLI processes, each importing pandas and LightGBM: past the 300 s default at a
# load average of 24 on two cores (make test, 2026-12-03).
@pytest.mark.timeout(900)
def test_the_cli_takes_named_columns_in_every_form(
    deployed: Deployed, tmp_path: Path, command: str
) -> None:
    target = "tumour" if command == "predict" else str(deployed.model)
    for form, data in _data_forms(deployed.rows, tmp_path).items():
        proc = shipyard(deployed.home, *command.split(), target, "--data", data)
        assert proc.returncode == 0, (form, proc.stderr)
        np.testing.assert_allclose(json.loads(proc.stdout)["predictions"], deployed.expected)


@pytest.mark.parametrize("command", ["predict", "model predict"])
def test_the_cli_names_what_the_user_wrote(deployed: Deployed, command: str) -> None:
    # In-process or through the deployed server: rows of the wrong width are told in rows
    # and columns, never by the tensor name ('input-0') the user never wrote.
    target = "tumour" if command == "predict" else str(deployed.model)
    proc = shipyard(deployed.home, *command.split(), target, "--data", "[[1, 2]]")
    message = one_red_line(proc)
    assert "input-0" not in message
    assert "Each row has 2 values; the model takes 3 (radius, texture, area)" in message
    proc = shipyard(
        deployed.home, "model", "predict", str(deployed.model), "--data", '[{"radius": 1}]'
    )
    assert "lacks column(s) 'texture', 'area'" in one_red_line(proc)


def test_commands_take_a_unique_model_name_and_list_shows_the_url(deployed: Deployed) -> None:
    uuid = deployed.service.uuid
    url = shipyard(deployed.home, "model-deployer", "models", "get-url", "tumour")
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip() == deployed.service.prediction_url
    described = shipyard(deployed.home, "model-deployer", "models", "describe", "tumour")
    assert described.returncode == 0 and uuid in described.stdout, described.stderr
    logs = shipyard(deployed.home, "model-deployer", "models", "logs", "tumour", "-n", "5")
    assert logs.returncode == 0, logs.stderr
    listed = shipyard(deployed.home, "model-deployer", "models", "list")
    assert str(deployed.service.endpoint.port) in listed.stdout, listed.stdout
    missing = shipyard(deployed.home, "model-deployer", "models", "describe", "nobody")
    assert "No model server named or with UUID 'nobody'" in one_red_line(missing)

"""Every REST route of a real server process, with httpx: answers, errors, metrics."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest

from shipyard.serving.codecs import v2
from shipyard.serving.types import RequestedOutput, Tensor
from shipyard.testing import ServerProcess, metric_value, wait_until

ROWS = np.random.default_rng(7).normal(size=(3, 4))


def _v2(rows: Any, name: str = "input-0", datatype: str = "FP64") -> dict[str, Any]:
    arr = np.asarray(rows)
    return {
        "id": "req-1",
        "inputs": [
            {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": arr.tolist()}
        ],
    }


@pytest.fixture(scope="module")
def forest(models_dir: Path) -> Any:
    return joblib.load(models_dir / "forest" / "model.joblib")


def test_health_and_metadata(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    server = client.get("/v2").json()
    assert server["name"] == "shipyard"
    assert "binary_tensor_data" in server["extensions"]
    meta = client.get("/v2/models/forest").json()
    assert meta["name"] == "forest"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert client.get("/v2/models/forest/ready").json() == {"name": "forest", "ready": True}
    assert client.get("/ping").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/v1/models/forest").json() == {"name": "forest", "ready": True}
    assert "/v2/models/{name}/infer" in client.get("/openapi.json").json()["paths"]


def test_v2_infer_answers_what_the_model_predicts(client: httpx.Client, forest: Any) -> None:
    answer = client.post("/v2/models/forest/infer", json=_v2(ROWS))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_name"] == "forest"
    assert body["id"] == "req-1"
    (out,) = body["outputs"]
    assert out == {
        "name": "output-0",
        "datatype": "INT64",
        "shape": [3],
        "data": forest.predict(ROWS).tolist(),
    }


def test_versioned_routes(client: httpx.Client) -> None:
    meta = client.get("/v2/models/versioned/versions/3").json()
    assert meta["versions"] == ["3"]
    ready = client.get("/v2/models/versioned/versions/3/ready")
    assert ready.json() == {"name": "versioned", "ready": True}
    answer = client.post("/v2/models/versioned/versions/3/infer", json=_v2(ROWS))
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == "3"
    assert client.get("/v2/models/versioned/versions/4/ready").status_code == 404


def test_v2_binary_tensor_extension(client: httpx.Client, forest: Any) -> None:
    tensor = Tensor(name="input-0", datatype="FP64", shape=[3, 4], data=ROWS)
    body, header = v2.encode_request(
        [tensor], binary=True, outputs=[RequestedOutput("output-0", {"binary_data": True})]
    )
    assert header is not None
    answer = client.post(
        "/v2/models/forest/infer",
        content=body,
        headers={
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(header),
        },
    )
    assert answer.status_code == 200, answer.text
    length = int(answer.headers["inference-header-content-length"])
    decoded = v2.decode_response(answer.content, length)
    np.testing.assert_array_equal(decoded.outputs[0].data, forest.predict(ROWS))


@pytest.mark.parametrize(
    "datatype",
    [
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
    ],
)
def test_every_numeric_datatype_round_trips(client: httpx.Client, datatype: str) -> None:
    # The "raises" model has no signature and doubles its input, keeping the dtype.
    answer = client.post("/v2/models/raises/infer", json=_v2([[1, 2], [3, 4]], "x", datatype))
    assert answer.status_code == 200, answer.text
    (out,) = answer.json()["outputs"]
    assert out["datatype"] == datatype
    assert out["shape"] == [2, 2]
    assert out["data"] == [2, 4, 6, 8]


def test_custom_predictor_pre_and_postprocessing(client: httpx.Client) -> None:
    rows = [[3.0, 3.0, 0.0, 0.0], [-3.0, -3.0, 0.0, 0.0]]
    answer = client.post("/v2/models/iris/infer", json=_v2(rows))
    assert answer.status_code == 200, answer.text
    (out,) = answer.json()["outputs"]
    assert out == {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["large", "small"]}
    mlflow = client.post("/invocations?model=iris", json={"instances": rows})
    assert mlflow.json() == {"predictions": ["large", "small"]}


def test_mlflow_scoring_formats(client: httpx.Client, forest: Any) -> None:
    expected = forest.predict(ROWS).tolist()
    columns = ["a", "b", "c", "d"]
    bodies: list[dict[str, Any]] = [
        {"instances": ROWS.tolist()},
        {"inputs": ROWS.tolist()},
        {"dataframe_split": {"columns": columns, "data": ROWS.tolist()}},
        {"dataframe_records": [dict(zip(columns, r, strict=True)) for r in ROWS.tolist()]},
    ]
    for body in bodies:
        answer = client.post("/invocations?model=forest", json=body)
        assert answer.json() == {"predictions": expected}, body
    csv = "a,b,c,d\n" + "\n".join(",".join(map(repr, r)) for r in ROWS.tolist()) + "\n"
    answer = client.post(
        "/invocations?model=forest", content=csv, headers={"content-type": "text/csv"}
    )
    assert answer.json() == {"predictions": expected}
    several = client.post("/invocations", json={"instances": ROWS.tolist()})
    assert several.status_code == 404
    assert "?model=" in several.json()["error"]


def test_a_table_reaches_a_model_without_signature_as_a_table(client: httpx.Client) -> None:
    # "raises" has no signature: it gets the DataFrame itself and answers one (doubled),
    # which goes back as records, the way MLflow's own server answers.
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}
    answer = client.post("/invocations?model=raises", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [{"a": 2, "b": 4}, {"a": 6, "b": 8}]}


def test_kserve_v1_and_seldon(client: httpx.Client, forest: Any) -> None:
    expected = forest.predict(ROWS).tolist()
    v1 = client.post("/v1/models/forest:predict", json={"instances": ROWS.tolist()})
    assert v1.json() == {"predictions": expected}
    seldon = client.post(
        "/api/v0.1/predictions?model=forest", json={"data": {"ndarray": ROWS.tolist()}}
    )
    assert seldon.json() == {"data": {"names": ["output-0"], "ndarray": expected}, "meta": {}}


def _nan_binary() -> tuple[bytes, dict[str, str]]:
    data = np.array([[1.0, np.nan, 0.0, 0.0]])
    body, header = v2.encode_request(
        [Tensor(name="x", datatype="FP64", shape=[1, 4], data=data)], binary=True
    )
    return body, {"inference-header-content-length": str(header)}


JSON = {"content-type": "application/json"}
BAD_REQUESTS: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("POST", "/v2/models/forest/infer", b"{not json", JSON, 400, "not valid JSON"),
    ("POST", "/v2/models/forest/infer", b'{"inputs": []}', JSON, 400, "inputs"),
    ("POST", "/v2/models/forest/infer", b"a=1", {"content-type": "text/plain"}, 415, "text/plain"),
    ("POST", "/v1/models/forest:predict", b"x", {"content-type": "application/xml"}, 415, "xml"),
    ("POST", "/invocations?model=forest", b"x", {"content-type": "image/png"}, 415, "image/png"),
    ("POST", "/v2/models/nope/infer", b'{"inputs": []}', JSON, 404, "'nope'"),
    ("GET", "/v2/models/forest/versions/9", b"", {}, 404, "version"),
    ("POST", "/v2/models/forest/versions/9/infer", b"{}", JSON, 404, "version"),
    ("GET", "/no/such/route", b"", {}, 404, "No route"),
    ("GET", "/invocations", b"", {}, 405, "POST"),
    (
        "POST",
        "/v2/models/forest/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}',
        JSON,
        400,
        "axis 1",
    ),
    (
        "POST",
        "/v2/models/forest/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", '
        b'"data": ["a", "b", "c", "d"]}]}',
        JSON,
        400,
        "cannot be cast",
    ),
    (
        "POST",
        "/v2/models/forest/infer",
        b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2, 3]}]}',
        JSON,
        400,
        "needs 8 elements",
    ),
    (
        "POST",
        "/v2/models/forest/infer",
        b'{"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP64", "data": []}]}',
        JSON,
        400,
        "empty",
    ),
    ("POST", "/v1/models/forest:predict", b'{"instances": []}', JSON, 400, "non-empty"),
    (
        "POST",
        "/invocations?model=strict",
        b"a,b,c,d\n1,,2,3\n",
        {"content-type": "text/csv"},
        400,
        "NaN",
    ),
    (
        "POST",
        "/v2/models/raises/infer",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [-1]}]}',
        JSON,
        500,
        "negative values are not allowed",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "fragment"),
    BAD_REQUESTS,
    ids=[f"{r[4]}-{r[5]}" for r in BAD_REQUESTS],
)
def test_bad_requests_get_clear_json_errors(
    client: httpx.Client,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    fragment: str,
) -> None:
    answer = client.request(method, path, content=body or None, headers=headers)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["error"]


def test_nan_forbidden_by_the_signature(client: httpx.Client) -> None:
    body, headers = _nan_binary()
    answer = client.post("/v2/models/strict/infer", content=body, headers=headers)
    assert answer.status_code == 400
    assert "NaN" in answer.json()["error"]


def test_body_over_the_limit_is_refused_unread(server: ServerProcess, max_body: int) -> None:
    big = b"[" + b"1," * (max_body // 2) + b"1]"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/v2/models/forest/infer", content=big, headers=JSON)
        assert answer.status_code == 413
        assert str(max_body) in answer.json()["error"]

    def chunks() -> Any:
        for _ in range(40):
            yield b" " * 50_000

    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/v2/models/forest/infer", content=chunks(), headers=JSON)
        assert answer.status_code == 413


def test_server_survives_bad_input_with_the_same_workers(
    server: ServerProcess, client: httpx.Client
) -> None:
    before = sorted(w["pid"] for w in server.status()["workers"])
    for method, path, body, headers, _, _ in BAD_REQUESTS * 3:
        client.request(method, path, content=body or None, headers=headers)
    assert client.post("/v2/models/forest/infer", json=_v2(ROWS)).status_code == 200
    status = server.status()
    assert sorted(w["pid"] for w in status["workers"]) == before
    assert status["ready"]


def test_concurrent_requests_are_batched(server: ServerProcess, client: httpx.Client) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=64)
        ) as http:
            return await asyncio.gather(
                *(
                    http.post("/v2/models/sleepy/infer", json=_v2([[float(i)] * 4]))
                    for i in range(64)
                )
            )

    answers = asyncio.run(burst())
    # Each request gets its own row's answer back, whatever batch it rode in.
    assert [a.json()["outputs"][0]["data"] for a in answers] == [[4.0 * i] for i in range(64)]
    # Every worker writes its numbers a few times a second; wait until all 64 are counted.
    wait_until(
        lambda: (
            metric_value(client.get("/metrics").text, "shipyard_batch_requests_sum", model="sleepy")
            >= 64
        ),
        "all 64 requests in the batch metrics",
    )
    text = client.get("/metrics").text
    requests = metric_value(text, "shipyard_batch_requests_sum", model="sleepy")
    calls = metric_value(text, "shipyard_batch_requests_count", model="sleepy")
    assert requests == 64
    assert calls < requests, "no predict call merged two requests"
    assert 'shipyard_requests_total{model="sleepy",protocol="v2",status="200"}' in text
    assert "shipyard_request_duration_seconds_bucket" in text


def test_v2_and_v1_errors_are_counted_with_their_model(client: httpx.Client) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    raising = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [-1]}]}
    sent = [
        (
            "/v2/models/iris/infer",
            b'{"inputs": []}',
            JSON,
            'model="iris",protocol="v2",status="400"',
        ),
        ("/v2/models/iris/infer", b"{}", form, 'model="iris",protocol="v2",status="415"'),
        ("/v1/models/iris:predict", b"{}", form, 'model="iris",protocol="v1",status="415"'),
        (
            "/v1/models/iris:predict",
            b'{"instances": []}',
            JSON,
            'model="iris",protocol="v1",status="400"',
        ),
        (
            "/v2/models/raises/infer",
            json.dumps(raising).encode(),
            JSON,
            'model="raises",protocol="v2",status="500"',
        ),
        # An unknown name is counted, but never becomes a label value of its own.
        ("/v2/models/made-up/infer", b"{}", JSON, 'model="",protocol="v2",status="404"'),
        ("/v1/models/made-up:predict", b"{}", JSON, 'model="",protocol="v1",status="404"'),
    ]
    for path, body, headers, labels in sent:
        for _ in range(3):
            answer = client.post(path, content=body, headers=headers)
            assert labels.endswith(f'status="{answer.status_code}"'), (path, answer.text)
    # Two workers flush their numbers a few times a second: wait until all are in.
    for _ in range(200):
        text = client.get("/metrics").text
        counts = {
            labels: (
                metric_value(text, f"shipyard_requests_total{{{labels}}}"),
                metric_value(text, f"shipyard_request_errors_total{{{labels}}}"),
            )
            for _, _, _, labels in sent
        }
        if all(total >= 3 and errors >= 3 for total, errors in counts.values()):
            break
        time.sleep(0.05)
    assert all(total >= 3 and errors >= 3 for total, errors in counts.values()), counts
    assert 'model="made-up"' not in text


def test_health_answers_head_probes(client: httpx.Client) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/ping"):
        answer = client.head(path)
        assert answer.status_code == 200, path
        assert answer.content == b""


def test_a_form_content_type_is_refused_with_the_curl_fix(client: httpx.Client) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    answer = client.post("/v1/models/forest:predict", content=b'{"instances": [[1]]}', headers=form)
    assert answer.status_code == 415
    assert "-H 'Content-Type: application/json'" in answer.json()["error"]


def test_a_predictors_own_error_is_logged_with_its_traceback(
    server: ServerProcess, client: httpx.Client
) -> None:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [-7]}]}
    assert client.post("/v2/models/raises/infer", json=body).status_code == 500
    for _ in range(200):
        if "in predict\n" in server.log():
            break
        time.sleep(0.05)
    log = server.log()
    assert "Traceback" in log
    assert "ValueError: negative values are not allowed by this predictor" in log
    assert "serving_predictors.py" in log

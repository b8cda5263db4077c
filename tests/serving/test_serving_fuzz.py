"""Random requests against the live server: no 5xx of its own making, no dead worker."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.testing import ServerProcess


def _dumps(value: Any) -> bytes:
    # The stdlib, not orjson: it writes integers beyond 64 bits, which clients may send.
    return json.dumps(value).encode()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
datatypes = st.sampled_from(
    ["BOOL", "UINT8", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "NOPE"]
)
tensors = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input-0", "x", ""]),
        "shape": st.lists(st.integers(-1, 5), max_size=3),
        "datatype": datatypes,
        "data": json_values,
    },
    optional={
        "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "a"]), json_values)
    },
)
v2_bodies = st.fixed_dictionaries(
    {"inputs": st.lists(tensors, max_size=3)},
    optional={
        "id": json_values,
        "outputs": st.lists(st.fixed_dictionaries({"name": st.text(max_size=8)}), max_size=2),
        "parameters": json_values,
    },
)
other_bodies = st.one_of(
    st.fixed_dictionaries({"instances": json_values}),
    st.fixed_dictionaries({"inputs": json_values}),
    st.fixed_dictionaries({"dataframe_split": json_values}),
    st.fixed_dictionaries({"dataframe_records": json_values}),
    st.fixed_dictionaries({"data": st.fixed_dictionaries({"ndarray": json_values})}),
    st.fixed_dictionaries({"data": st.fixed_dictionaries({"tensor": json_values})}),
    json_values,
)
paths = st.sampled_from(
    [
        "/v2/models/forest/infer",
        "/v2/models/strict/infer",
        "/v2/models/iris/infer",
        "/v2/models/raises/infer",
        "/v2/models/forest/versions/1/infer",
        "/v2/models/%00/infer",
        "/v1/models/forest:predict",
        "/v1/models/iris:predict",
        "/invocations?model=forest",
        "/invocations?model=strict",
        "/api/v0.1/predictions?model=forest",
        "/api/v0.1/predictions?model=iris",
        # No signature: whatever decodes reaches the predictor and must encode back.
        "/invocations?model=raises",
        "/v1/models/raises:predict",
        "/api/v0.1/predictions?model=raises",
    ]
)
content_types = st.sampled_from(
    ["application/json", "text/csv", "application/octet-stream", "text/plain", ""]
)
raw_bodies = st.one_of(
    v2_bodies.map(_dumps),
    other_bodies.map(_dumps),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
)


def _predictor_error(response: httpx.Response) -> bool:
    # A predictor's own exception is a 500 that names it: with its text (--expose-errors)
    # or, by default, with a request id for the server log; anything else is ours.
    try:
        error = response.json()["error"]
    except (ValueError, KeyError):
        return False
    return isinstance(error, str) and (
        ".predict() raised" in error or "failed on this request (request id" in error
    )


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=paths,
    body=raw_bodies,
    content_type=content_types,
    header_length=st.none() | st.integers(-5, 300).map(str) | st.just("x"),
)
def test_random_requests_never_get_a_5xx_from_the_server(
    client: httpx.Client, path: str, body: bytes, content_type: str, header_length: str | None
) -> None:
    headers: dict[str, Any] = {"content-type": content_type} if content_type else {}
    if header_length is not None:
        headers["inference-header-content-length"] = header_length
    response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500 or _predictor_error(response), (
        response.status_code,
        response.text,
    )
    assert "error" in response.json() if response.status_code >= 400 else True


def test_after_the_fuzz_every_worker_lives(server: ServerProcess, client: httpx.Client) -> None:
    status = server.status()
    assert status["ready"]
    assert len(status["workers"]) == 2
    assert client.get("/v2/health/ready").status_code == 200

"""MLflow users' requests: ``params`` reach a predictor that takes them and are refused,
clearly, by one that does not; ``GET /version`` answers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import input_type_predictors as itp
import numpy as np
import pytest

from shipyard import __version__
from shipyard.models import save_model
from shipyard.testing import ServerProcess, start_server

ROWS = [[1.0, 2.0], [3.0, 4.0]]


@pytest.fixture(scope="module", params=["Scaled", "Reports"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ServerProcess]]:
    name: str = request.param
    path = tmp_path_factory.mktemp("params") / name.lower()
    save_model(None, path, predictor=getattr(itp, name), input_example=np.asarray(ROWS))
    with start_server(path, workers=1) as proc:
        yield name, proc


def test_params_reach_a_predictor_that_takes_them_or_are_refused(
    served: tuple[str, ServerProcess],
) -> None:
    name, proc = served
    body = {"inputs": ROWS, "params": {"k": 10}}
    answer = httpx.post(f"{proc.url}/invocations", json=body, timeout=30)
    if name == "Scaled":
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [10.0, 30.0]}
        plain = httpx.post(f"{proc.url}/invocations", json={"inputs": ROWS}, timeout=30)
        assert plain.json() == {"predictions": [1.0, 3.0]}
    else:
        assert answer.status_code == 400
        assert 'takes none: drop "params"' in answer.json()["error"]
    typo = httpx.post(f"{proc.url}/invocations", json={"inputs": ROWS, "param": {}}, timeout=30)
    assert typo.status_code == 400 and "'param'" in typo.json()["error"]


def test_version(served: tuple[str, ServerProcess]) -> None:
    answer = httpx.get(f"{served[1].url}/version", timeout=30)
    assert answer.status_code == 200 and answer.text == __version__

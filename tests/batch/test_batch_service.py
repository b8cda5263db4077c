"""--service: the batches go to a real model server process over the V2 protocol."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from batch_helpers import RunCli, expected_logreg, save_custom, write_input

from shipyard.batch import predict
from shipyard.errors import ServiceError
from shipyard.testing import ServerProcess, free_port, start_server, wait_until


@pytest.fixture(scope="module")
def logreg_server(
    tmp_path_factory: pytest.TempPathFactory, sklearn_model: Path
) -> Iterator[ServerProcess]:
    with start_server(sklearn_model) as server:
        yield server


def test_cli_service_url_gives_the_local_predictions(
    tmp_path: Path,
    logreg_server: ServerProcess,
    sklearn_model: Path,
    frame: pd.DataFrame,
    run_cli: RunCli,
) -> None:
    src = write_input(frame, tmp_path / "in.csv", "csv")
    out = tmp_path / "out.parquet"
    url = f"{logreg_server.url}/v2/models/logreg"
    done = run_cli(
        "batch", "predict", "--service", url, "--input", str(src), "--output", str(out),
        "--id-column", "id", "--columns", "a,b,c,d", "--batch-size", "128",
        "--workers", "2", "--shard-bytes", "20000", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == len(frame)
    result = pd.read_parquet(out)
    assert result["id"].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(result["prediction"], expected_logreg(sklearn_model, frame))


def test_server_side_rejections_are_skipped_aside(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = save_custom(tmp_path, "Picky", example=np.zeros((2, 2)))
    bad = frame.copy()
    bad.loc[[7, 300], "a"] = -1.0
    src = write_input(bad, tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out.jsonl"
    with start_server(model) as server:
        summary = predict(
            None,
            str(src),
            str(out),
            service=f"{server.url}/v2/models/picky",
            columns=["a", "b"],
            id_column="id",
            on_error="skip",
            batch_size=100,
        )
        assert server.process.poll() is None  # the server survived the bad rows
        rejects = [json.loads(line) for line in Path(str(summary.rejects)).read_text().splitlines()]
        # The server keeps the predictor's own text in its log, under the request id each
        # reject carries (issue 10: no predictor internals to clients by default).
        ids = [re.search(r"request id ([0-9a-f]+)", r["error"]) for r in rejects]
        assert all(ids), rejects
        wait_until(
            lambda: all(f"request {m.group(1)}" in server.log() for m in ids if m),
            "the rejections in the server log",
        )
        assert "must not be negative" in server.log()
    assert (summary.rows, summary.rejected) == (len(frame) - 2, 2)
    assert [r["row"] for r in rejects] == [7, 300]
    result = pd.read_json(out, lines=True, precise_float=True)
    good = bad.drop(index=[7, 300])
    np.testing.assert_allclose(result["prediction"], good["a"] + good["b"])


def test_unreachable_service_is_a_clear_error(tmp_path: Path, frame: pd.DataFrame) -> None:
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    url = f"http://127.0.0.1:{free_port()}/v2/models/nothing"
    with pytest.raises(ServiceError, match=r"Cannot reach the model server at .*Is it running"):
        predict(None, str(src), str(tmp_path / "out.parquet"), service=url)

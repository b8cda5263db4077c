"""--service by name or UUID: resolved through the model server registry (control plane)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from batch_helpers import RunCli, expected_logreg, write_input

from shipyard.deployers.testing import kill_services_under


@pytest.fixture
def deployed(shipyard_home: Path, sklearn_model: Path) -> Iterator[str]:
    """The model deployed by the local model deployer; its UUID. Killed by PID at the end."""
    from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer

    deployer = LocalModelDeployer.get_active_model_deployer()
    try:
        service = deployer.deploy_model(
            LocalDeploymentConfig(model_uri=str(sklearn_model), model_name="scorer"),
            timeout=300,
        )
        yield str(service.uuid)
    finally:
        kill_services_under(shipyard_home)


def test_service_by_name_and_by_uuid(
    deployed: str, tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame, run_cli: RunCli
) -> None:
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    expected = expected_logreg(sklearn_model, frame)
    for i, ref in enumerate(["scorer", deployed[:8]]):
        out = tmp_path / f"out-{i}.parquet"
        done = run_cli(
            "batch", "predict", "--service", ref, "-i", str(src), "-o", str(out),
            "--columns", "a,b,c,d", "--id-column", "id", "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rows"] == len(frame)
        np.testing.assert_array_equal(pd.read_parquet(out)["prediction"], expected)
    unknown = run_cli(
        "batch", "predict", "--service", "nobody", "-i", str(src), "-o", str(tmp_path / "x.csv")
    )
    assert unknown.returncode == 1
    assert "No model server with UUID or model name 'nobody'" in unknown.stderr

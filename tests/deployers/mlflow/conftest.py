"""A real MLflow tracking server (SQLite backend, local artifact root) and a registered
model with two working versions that always disagree and a third that cannot load.

Started once per session: the server takes tens of seconds to start on a busy machine.
Stopped by its process group (its uvicorn workers are in it), never by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.testing import start_mlflow_server

pytest.importorskip("mlflow", reason="the mlflow tests run with `make test-mlflow`")

MODEL = "clf"

#: MLflow warns about its own choices (type hints inferred as Any, deprecated stages,
#: its dependencies' deprecations); they are not ours to fix, and warnings stay errors
#: everywhere else.
_MLFLOW_WARNINGS = ("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            for spec in _MLFLOW_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server.uri


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    name: str
    run_id: str
    """The run that logged version 1 (its artifact path is ``model``)."""
    rows: np.ndarray

    def client(self) -> object:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri)


@pytest.fixture(scope="session")
def registry(tracking_uri: str) -> Registry:
    import mlflow
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_uri)
    x, y = make_classification(n_samples=300, n_features=4, random_state=0)
    run_ids = []
    # Version 2 is trained on flipped labels: it answers the opposite class of version 1.
    for labels in (y, 1 - y, y):
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(x, labels),
                name="model",
                registered_model_name=MODEL,
                input_example=x[:2],
                # Given, so MLflow does not spend seconds inferring them in a subprocess.
                pip_requirements=["scikit-learn"],
            )
        run_ids.append(run.info.run_id)
    # Version 3 cannot load: its model file is garbage.
    broken = Path(mlflow.get_logged_model(info.model_id).artifact_location.removeprefix("file://"))
    for path in broken.iterdir():
        if path.name.startswith("model."):
            path.write_bytes(b"not a model")
    return Registry(tracking_uri=tracking_uri, name=MODEL, run_id=run_ids[0], rows=x[:8])


def cli(*args: str) -> str:
    """Run ``shipyard ARGS`` in-process; its output, after checking it succeeded."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def activate_mlflow_stack(registry: Registry, tracking_uri: str | None = None) -> None:
    """Register an ``mlflow`` deployer on the test tracking server (or at ``tracking_uri``,
    e.g. the same server's URL with credentials), in an active stack."""
    cli(
        "model-deployer",
        "register",
        "mlf",
        "--flavor",
        "mlflow",
        "--tracking-uri",
        tracking_uri or registry.tracking_uri,
    )
    cli(
        "stack",
        "register",
        "mlf",
        "-a",
        "default",
        "--orchestrator",
        "default",
        "-d",
        "mlf",
        "--set",
    )

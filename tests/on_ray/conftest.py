"""A real two-node Ray cluster on 127.0.0.1 for the whole session (``make test-ray``).

(The folder is not called ``ray``: a test package of that name would shadow Ray.)

A head (``ray start --head --num-cpus 1 --include-dashboard=false``) and a second node
joined to it, each in its own process group, stopped by that group at the end: never
``ray stop``, which would stop every Ray process on the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from shipyard.deployers.ray._cluster import RayNode, start_head, start_worker
from shipyard.deployers.testing import (
    DisagreeingModels,
    save_disagreeing_models,
    serve_files_with_basic_auth,
)
from shipyard.testing import free_port

#: Ray's own deprecated uses (pydantic, its bundled libraries): not ours to fix. Every test
#: module here sets ``pytestmark = RAY_WARNINGS``.
RAY_WARNINGS = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
    pytest.mark.filterwarnings("ignore:Using extra keyword arguments on `Field`"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

# Small object stores: the machine is shared, and the tests move little data.
_STORE_BYTES = 100 << 20


@dataclass(frozen=True)
class Cluster:
    head: RayNode
    worker: RayNode
    serve_port: int
    grpc_port: int

    @property
    def address(self) -> str:
        return self.head.address


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("ray-logs")
    head = start_head(num_cpus=1, object_store_memory=_STORE_BYTES, log_path=logs / "head.log")
    worker: RayNode | None = None
    try:
        worker = start_worker(
            head.address,
            num_cpus=1,
            object_store_memory=_STORE_BYTES,
            log_path=logs / "worker.log",
        )
        yield Cluster(head=head, worker=worker, serve_port=free_port(), grpc_port=free_port())
    finally:
        from shipyard._ray.connect import disconnect

        try:
            disconnect()
        finally:
            if worker is not None:
                worker.stop()
            head.stop()
            head.remove_files()


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> DisagreeingModels:
    """Two models that always disagree, a model that cannot load, and their input."""
    return save_disagreeing_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def ray_stack(home: Path, ray_cluster: Cluster) -> Cluster:
    """The active stack's model deployer is ``ray`` on the session cluster."""
    from typer.testing import CliRunner

    from shipyard.cli.main import app

    runner = CliRunner()
    for args in (
        [
            "model-deployer",
            "register",
            "ray",
            "--flavor=ray",
            f"--address={ray_cluster.address}",
            f"--http_port={ray_cluster.serve_port}",
            f"--grpc_port={ray_cluster.grpc_port}",
        ],
        [
            "stack",
            "register",
            "ray-stack",
            "-a",
            "default",
            "--orchestrator",
            "default",
            "-d",
            "ray",
            "--set",
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return ray_cluster


#: The basic-auth credentials of ``remote_model``'s server (made up for the tests).
USER = "reader"
PASSWORD = "Pw-3b9e-ray-test-only"


@dataclass
class RemoteModel:
    """A joblib model behind a 127.0.0.1 HTTP server that requires basic auth."""

    port: int
    rows: np.ndarray
    expected: list[int]
    #: The served file, to compare predictions with.
    path: Path
    authorized: list[str] = field(default_factory=list)

    def uri(self, password: str = PASSWORD) -> str:
        return f"http://{USER}:{password}@127.0.0.1:{self.port}/clf.joblib"


@pytest.fixture(scope="session")
def remote_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteModel]:
    """A pickle (joblib) from a remote URI with credentials: what needs both a secret
    and the caller's trust to load."""
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("remote")
    x, y = make_classification(n_samples=300, n_features=4, random_state=0)
    model = LogisticRegression().fit(x, y)
    joblib.dump(model, root / "clf.joblib")
    with serve_files_with_basic_auth(root, USER, PASSWORD) as served:
        yield RemoteModel(
            port=served.port,
            rows=x[:6],
            expected=[int(v) for v in model.predict(x[:6])],
            path=root / "clf.joblib",
            authorized=served.authorized,
        )

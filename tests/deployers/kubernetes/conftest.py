"""Fixtures of the kserve/seldon tests: an emulated API server and deployers bound to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app

from .emulator import Cluster, running_cluster

NAMESPACE = "models"
BASE_URL = "http://ingress.example.test:8080"


def cli(*args: str) -> str:
    """Run the CLI in-process; its own errors are raised, not swallowed."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An emulated cluster with KServe's and Seldon's resource types declared."""
    with running_cluster() as running:
        running.declare("serving.kserve.io/v1beta1", "inferenceservices", "InferenceService")
        running.declare(
            "serving.kserve.io/v1alpha1",
            "clusterservingruntimes",
            "ClusterServingRuntime",
            namespaced=False,
        )
        running.declare("machinelearning.seldon.io/v1", "seldondeployments", "SeldonDeployment")
        running.declare("v1", "serviceaccounts", "ServiceAccount")
        running.declare("v1", "secrets", "Secret")
        running.write_kubeconfig(tmp_path, NAMESPACE)
        yield running


def register(flavor: str, cluster: Cluster, store_dir: Path, *extra: str) -> None:
    """The seed's command, then a stack with it, active."""
    cli(
        "model-deployer",
        "register",
        flavor,
        f"--flavor={flavor}",
        "--kubernetes_context=emulated",
        f"--kubernetes_namespace={NAMESPACE}",
        f"--base_url={BASE_URL}",
        f"--kubernetes_config_file={cluster.kubeconfig}",
        f"--model_store={store_dir}",
        "--model_store_uri=s3://models-bucket/shipyard",
        *extra,
    )
    cli(
        "stack",
        "register",
        f"{flavor}-stack",
        "-a",
        "default",
        "--orchestrator",
        "default",
        "-d",
        flavor,
        "--set",
    )

"""`--dry-run` prints the manifests and sends and uploads nothing; `get-url` shows the
Host header an ingress needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from shipyard.pipelines import pipeline, step
from shipyard.steps import model_deployer_step

from ..conftest import Models
from .conftest import cli, register
from .crds import errors
from .emulator import Cluster


def test_deploy_dry_run_prints_valid_manifests_and_sends_nothing(
    home: Path, cluster: Cluster, models: Models, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    register("kserve", cluster, bucket)
    out = cli(
        "deploy", models.a, "--name", "iris", "--dry-run",
        "--set", "replicas=2", "--set", "canary_traffic_percent=10",
    )  # fmt: skip
    [isvc] = list(yaml.safe_load_all(out))
    assert isvc["kind"] == "InferenceService" and errors(isvc) == []
    assert isvc["spec"]["predictor"]["minReplicas"] == 2
    assert cluster.items("serving.kserve.io/v1beta1", "inferenceservices") == []
    assert not bucket.exists()

    register("seldon", cluster, bucket)
    out = cli("deploy", models.a, "--name", "iris", "--dry-run", "-O", "json")
    [sdep] = yaml.safe_load(out)
    assert sdep["kind"] == "SeldonDeployment" and errors(sdep) == []
    assert cluster.items("machinelearning.seldon.io/v1", "seldondeployments") == []


@step
def _fit() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])


@pipeline(name="k8s-dry-run")
def _dry_run_pipeline() -> None:
    model_deployer_step(_fit(), True, model_name="m", dry_run=True, config={"replicas": 2})


def test_the_deployer_step_dry_run_records_the_manifests_and_sends_nothing(
    home: Path, cluster: Cluster, tmp_path: Path
) -> None:
    register("kserve", cluster, tmp_path / "bucket")
    run = _dry_run_pipeline()
    recorded = run.steps["model_deployer_step"].metadata
    assert recorded["dry_run"] is True and recorded["deployed"] is False
    [isvc] = recorded["manifests"]
    assert errors(isvc) == []
    assert isvc["spec"]["predictor"]["minReplicas"] == 2
    labels = isvc["metadata"]["labels"]
    assert labels["shipyard.dev/pipeline-name"] == "k8s-dry-run"
    assert cluster.items("serving.kserve.io/v1beta1", "inferenceservices") == []
    assert not (tmp_path / "bucket").exists()


def test_the_shipyard_runtime_is_printed_and_applied(
    home: Path, cluster: Cluster, tmp_path: Path
) -> None:
    [printed] = list(yaml.safe_load_all(cli("kserve", "runtime", "--image", "reg.example/s:1")))
    assert printed["kind"] == "ClusterServingRuntime" and errors(printed) == []
    register("kserve", cluster, tmp_path / "bucket", "--image=reg.example/s:1")
    assert "applied" in cli("kserve", "runtime", "--apply")
    stored = cluster.get("serving.kserve.io/v1alpha1", "clusterservingruntimes", None, "shipyard")
    assert stored is not None
    assert stored["spec"]["containers"][0]["image"] == "reg.example/s:1"
    # Applied again with another image: updated in place.
    cli("kserve", "runtime", "--apply", "--image", "reg.example/s:2")
    stored = cluster.get("serving.kserve.io/v1alpha1", "clusterservingruntimes", None, "shipyard")
    assert stored["spec"]["containers"][0]["image"] == "reg.example/s:2"

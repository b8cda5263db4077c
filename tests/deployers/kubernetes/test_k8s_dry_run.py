"""`--dry-run` prints the manifests and sends and uploads nothing; `get-url` shows the
Host header an ingress needs."""

from __future__ import annotations

from pathlib import Path

import yaml

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

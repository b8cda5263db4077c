"""Every manifest the kserve and seldon flavors generate validates against the real CRDs
(KServe v0.20.0, Seldon Core v1.17.1; unknown fields are errors), and a bad config is
refused before anything is sent, naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import shipyard
from shipyard.deployers.kserve import (
    KServeDeploymentConfig,
    KServeModelDeployer,
    KServeModelDeployerConfig,
    cluster_serving_runtime,
)
from shipyard.deployers.kserve.config import PREDICTORS
from shipyard.deployers.kserve.deployer import canary_manifest
from shipyard.deployers.seldon import (
    SeldonDeploymentConfig,
    SeldonModelDeployer,
    SeldonModelDeployerConfig,
)
from shipyard.deployers.seldon.config import IMPLEMENTATIONS
from shipyard.errors import ConfigError, DeploymentError
from shipyard.stack.component import ComponentType
from shipyard.stack.registry import FlavorRegistry
from shipyard.store import Store

from ..conftest import Models
from .crds import errors

REMOTE = "s3://models-bucket/iris/1"


def kserve(store: Store, tmp_path: Path, **settings: Any) -> KServeModelDeployer:
    config = KServeModelDeployerConfig(
        kubernetes_namespace="models",
        model_store=str(tmp_path / "bucket"),
        model_store_uri="gs://bucket/models",
        image="registry.example/shipyard-iris:1",
        **settings,
    )
    return KServeModelDeployer(name="k", id="k-id", flavor="kserve", config=config, store=store)


def seldon(store: Store, tmp_path: Path, **settings: Any) -> SeldonModelDeployer:
    config = SeldonModelDeployerConfig(
        kubernetes_namespace="models",
        model_store=str(tmp_path / "bucket"),
        model_store_uri="pvc://models-pvc/shipyard",
        image="registry.example/shipyard-iris:1",
        **settings,
    )
    return SeldonModelDeployer(name="s", id="s-id", flavor="seldon", config=config, store=store)


def valid(manifest: dict[str, Any]) -> dict[str, Any]:
    problems = errors(manifest)
    assert problems == [], problems
    return manifest


@pytest.mark.parametrize("predictor", [p for p in PREDICTORS if p != "auto"])
def test_every_kserve_model_format_gives_a_valid_inference_service(
    store: Store, tmp_path: Path, predictor: str
) -> None:
    # Trusted: the sklearn, mlflow and pytorch runtimes unpickle a remote model.
    *secret, isvc = kserve(store, tmp_path).render_deployment(
        KServeDeploymentConfig(
            model_uri=REMOTE, model_name="iris", predictor=predictor, trusted=True
        )
    )
    # Shipyard's server gets its token from the pods' Secret (shown without values).
    assert [m["kind"] for m in secret] == (["Secret"] if predictor == "custom" else [])
    model = valid(isvc)["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == REMOTE
    expected = "shipyard" if predictor == "custom" else predictor
    assert model["modelFormat"] == {"name": expected}
    assert model.get("runtime") == ("shipyard" if predictor == "custom" else None)


def test_kserve_everything_set_is_valid_and_on_the_right_fields(
    store: Store, tmp_path: Path
) -> None:
    config = KServeDeploymentConfig(
        model_uri=REMOTE,
        model_name="Iris Classifier",
        predictor="sklearn",
        trusted=True,
        replicas=2,
        max_replicas=5,
        timeout=30,
        resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1"}},
        service_account_name="s3-reader",
        env={"LOG_LEVEL": "debug"},
        deployment_mode="Standard",
        pipeline_name="training pipeline/with spaces",
        pipeline_step_name="deploy",
        pipeline_run_id="run-1",
    )
    [isvc] = kserve(store, tmp_path).render_deployment(config)
    valid(isvc)
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["timeout"]) == (2, 5, 30)
    assert predictor["serviceAccountName"] == "s3-reader"
    assert predictor["model"]["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    labels = isvc["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "shipyard"
    assert labels["shipyard.dev/pipeline-name"] == "training-pipeline-with-spaces"
    assert isvc["metadata"]["annotations"]["shipyard.dev/pipeline-name"] == (
        "training pipeline/with spaces"
    )
    assert isvc["metadata"]["name"].startswith("iris-classifier-")


def test_a_local_model_picks_the_platform_runtime_or_shipyards(
    store: Store, tmp_path: Path, models: Models
) -> None:
    from sklearn.linear_model import LogisticRegression

    deployer = kserve(store, tmp_path)
    [plain] = deployer.render_deployment({"model_uri": models.a, "model_name": "iris"})
    assert valid(plain)["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}
    assert plain["spec"]["predictor"]["model"]["storageUri"].startswith("gs://bucket/models/iris/")
    assert not (tmp_path / "bucket").exists()  # a dry run uploads nothing

    # A non-default method (predict_proba) is not what the platform's server calls.
    proba = shipyard.save_model(
        LogisticRegression().fit(models.rows, [0, 1] * 4),
        tmp_path / "proba",
        input_example=models.rows[:2],
        method="predict_proba",
    )
    *_, custom = deployer.render_deployment({"model_uri": str(proba), "model_name": "iris"})
    model = valid(custom)["spec"]["predictor"]["model"]
    assert (model["modelFormat"], model["runtime"]) == ({"name": "shipyard"}, "shipyard")


@pytest.mark.parametrize("mode", ["Standard", "Knative"])
def test_kserve_canary_manifests_are_valid(store: Store, tmp_path: Path, mode: str) -> None:
    deployer = kserve(store, tmp_path)
    *_, old = deployer.render_deployment({"model_uri": REMOTE, "model_name": "iris"})
    *_, new = deployer.render_deployment(
        {"model_uri": REMOTE + "-v2", "model_name": "iris", "canary_traffic_percent": 20}
    )
    current = copy.deepcopy(old)
    current["status"] = {"deploymentMode": mode}
    staged = valid(canary_manifest(current, new, 20, mode))
    if mode == "Standard":
        assert staged["spec"]["predictor"]["model"]["storageUri"] == REMOTE
        assert staged["spec"]["canary"][0]["trafficPercent"] == 20
        assert staged["spec"]["canary"][0]["predictor"]["model"]["storageUri"] == REMOTE + "-v2"
    else:
        assert staged["spec"]["predictor"]["canaryTrafficPercent"] == 20
        assert staged["spec"]["predictor"]["model"]["storageUri"] == REMOTE + "-v2"


def test_the_shipyard_cluster_serving_runtime_is_valid() -> None:
    runtime = valid(cluster_serving_runtime("registry.example/shipyard:1"))
    container = runtime["spec"]["containers"][0]
    assert container["args"][:2] == ["serve", "/mnt/models"]
    # A token from each InferenceService's Secret, not --insecure; the probes stay open.
    assert "--insecure" not in container["args"]
    open_paths = container["args"][container["args"].index("--open-paths") + 1].split(",")
    assert container["readinessProbe"]["httpGet"]["path"] in open_paths
    assert runtime["spec"]["supportedModelFormats"][0]["name"] == "shipyard"
    # The same container spec is a valid namespaced ServingRuntime too.
    valid({**runtime, "kind": "ServingRuntime"})


@pytest.mark.parametrize("implementation", [i for i in IMPLEMENTATIONS if i])
def test_every_seldon_implementation_gives_a_valid_seldon_deployment(
    store: Store, tmp_path: Path, implementation: str
) -> None:
    config = SeldonDeploymentConfig(
        model_uri=REMOTE,
        model_name="iris",
        replicas=3,
        implementation=implementation,
        trusted=True,
        secret_name="s3-credentials",
        resources={"limits": {"cpu": "2", "memory": "1Gi"}},
        pipeline_name="p",
        pipeline_step_name="s",
        pipeline_run_id="r",
    )
    *_, sdep = seldon(store, tmp_path).render_deployment(config)
    valid(sdep)
    assert sdep["spec"]["protocol"] == "v2"
    predictor = sdep["spec"]["predictors"][0]
    graph = predictor["graph"]
    assert (predictor["replicas"], graph["modelUri"], graph["envSecretRefName"]) == (
        3,
        REMOTE,
        "s3-credentials",
    )
    container = predictor["componentSpecs"][0]["spec"]["containers"][0]
    assert container["name"] == graph["name"]
    if implementation == "custom":
        assert "implementation" not in graph
        assert container["image"] == "registry.example/shipyard-iris:1"
        assert container["args"][:2] == ["serve", "/mnt/models"]
    else:
        assert graph["implementation"] == implementation


def test_a_local_sklearn_model_goes_to_seldons_sklearn_server(
    store: Store, tmp_path: Path, models: Models
) -> None:
    [sdep] = seldon(store, tmp_path).render_deployment({"model_uri": models.a, "model_name": "m"})
    graph = valid(sdep)["spec"]["predictors"][0]["graph"]
    assert graph["implementation"] == "SKLEARN_SERVER"
    assert graph["modelUri"].startswith("pvc://models-pvc/shipyard/m/")


def test_the_strict_schema_catches_a_misspelt_field() -> None:
    # The check the tests rely on: a field the CRD does not declare is an error.
    bad = cluster_serving_runtime("img")
    bad["spec"]["containers"][0]["imagee"] = "typo"
    assert any("imagee" in problem for problem in errors(bad))


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"resources": {"requests": {"cpu": "lots"}}}, "resources.requests.cpu"),
        ({"resources": {"wants": {"cpu": "1"}}}, "'requests' and 'limits'"),
        ({"canary_traffic_percent": 150}, "canary_traffic_percent"),
        ({"predictor": "sklean"}, "predictor must be one of"),
        ({"min_replicas": 3, "max_replicas": 2}, "max_replicas (2) is below min_replicas (3)"),
        ({"storage_uri": "s3://x"}, "unknown key 'storage_uri'"),
    ],
)
def test_a_bad_kserve_config_is_refused_before_anything_is_sent_naming_the_field(
    store: Store, tmp_path: Path, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(DeploymentError, match="KServeDeploymentConfig") as err:
        kserve(store, tmp_path).render_deployment(
            {"model_uri": REMOTE, "model_name": "iris", **values}
        )
    assert named in str(err.value)


def test_a_bad_deployer_config_names_the_key() -> None:
    flavor = FlavorRegistry().get(ComponentType.MODEL_DEPLOYER, "kserve")
    with pytest.raises(ConfigError, match="kubernetes_namespace"):
        flavor.validate_config({"kubernetes_namespace": "Not_A_Namespace"})
    with pytest.raises(ConfigError, match="base_url"):
        flavor.validate_config({"base_url": "ingress.example"})


def test_seldon_custom_without_an_image_says_how_to_get_one(store: Store, tmp_path: Path) -> None:
    deployer = SeldonModelDeployer(
        name="s",
        id="s-id",
        flavor="seldon",
        config=SeldonModelDeployerConfig(model_store=str(tmp_path)),
        store=store,
    )
    with pytest.raises(DeploymentError, match="shipyard build"):
        deployer.render_deployment(
            {"model_uri": REMOTE, "model_name": "m", "implementation": "custom"}
        )


def test_a_local_model_without_a_model_store_is_refused(store: Store, models: Models) -> None:
    deployer = KServeModelDeployer(
        name="k", id="k-id", flavor="kserve", config=KServeModelDeployerConfig(), store=store
    )
    with pytest.raises(DeploymentError, match="model_store"):
        deployer.render_deployment({"model_uri": models.a, "model_name": "m"})

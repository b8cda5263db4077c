"""Rules every flavor applies to its configs the same way (one implementation each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.deployers.kserve import KServeDeploymentConfig
from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer
from shipyard.deployers.mlflow import MLFlowModelDeployer
from shipyard.deployers.mlflow.config import MLFlowModelDeployerConfig
from shipyard.errors import StackError
from shipyard.stack.component import ComponentConfig
from shipyard.store import Store


@pytest.mark.parametrize("config_class", [LocalDeploymentConfig, KServeDeploymentConfig])
def test_a_relative_model_path_is_kept_absolute_and_a_scheme_uri_as_given(
    config_class: type[LocalDeploymentConfig] | type[KServeDeploymentConfig],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert config_class(model_uri="models/a").model_uri == str(tmp_path / "models" / "a")
    for uri in ("models:/iris/3", "s3://bucket/a", "file:///srv/a", "/srv/a"):
        assert config_class(model_uri=uri).model_uri == uri


def test_a_deployer_built_with_another_flavors_config_says_so(store: Store) -> None:
    deployer = LocalModelDeployer(
        name="mixed", id="1", flavor="local", config=ComponentConfig(), store=store
    )
    with pytest.raises(StackError, match="'mixed' has a ComponentConfig config, not the "):
        _ = deployer.settings.workers
    # A subclass of the flavor's config class is that class.
    mlflow = MLFlowModelDeployer(
        name="m", id="2", flavor="mlflow", config=MLFlowModelDeployerConfig(), store=store
    )
    assert mlflow.settings.tracking_uri == ""

from __future__ import annotations

import pytest

from shipyard.deployers.local import LocalDeploymentConfig

# ``Models`` is the name the tests here import.
from shipyard.deployers.testing import DisagreeingModels as Models
from shipyard.deployers.testing import save_disagreeing_models

__all__ = ["Models", "local_config"]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """Two models that always disagree, a model that cannot load, and their input."""
    return save_disagreeing_models(tmp_path_factory.mktemp("models"))


def local_config(model_uri: str, **extra: object) -> LocalDeploymentConfig:
    """A local deployment of ``model_uri`` as the training pipeline's deploy step makes it."""
    return LocalDeploymentConfig(
        model_uri=model_uri,
        model_name="clf",
        pipeline_name="train",
        pipeline_step_name="deploy",
        **extra,  # type: ignore[arg-type]
    )

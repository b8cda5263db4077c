from __future__ import annotations

import pytest

# ``Models`` is the name the tests here import.
from shipyard.deployers.testing import DisagreeingModels as Models
from shipyard.deployers.testing import save_disagreeing_models

__all__ = ["Models"]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """Two models that always disagree, a model that cannot load, and their input."""
    return save_disagreeing_models(tmp_path_factory.mktemp("models"))

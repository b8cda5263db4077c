from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass(frozen=True)
class Models:
    """Two models that always disagree, a model that cannot load, and their input."""

    a: str
    b: str
    broken: str
    rows: np.ndarray

    def expected_a(self) -> list[int]:
        import shipyard

        return [int(v) for v in shipyard.load_model(self.a).predict(self.rows)]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    import shipyard

    root = tmp_path_factory.mktemp("models")
    x, y = make_classification(n_samples=300, n_features=4, random_state=0)
    shipyard.save_model(LogisticRegression().fit(x, y), root / "a", input_example=x[:2])
    # Trained on flipped labels: it answers the opposite class of ``a`` for every row.
    shipyard.save_model(LogisticRegression().fit(x, 1 - y), root / "b", input_example=x[:2])
    shipyard.save_model(LogisticRegression().fit(x, y), root / "broken")
    (root / "broken" / "model.joblib").write_bytes(b"not a joblib file")
    return Models(a=str(root / "a"), b=str(root / "b"), broken=str(root / "broken"), rows=x[:8])

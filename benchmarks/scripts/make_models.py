"""Train the two benchmark models and save them in one server's format.

Runs inside the target server's own virtual environment, so every server loads a
model pickled by the scikit-learn it runs with. Training is deterministic
(fixed data and ``random_state``), so every format holds the same model.

Usage: python make_models.py FORMAT OUT_DIR
FORMAT: joblib | mlserver | mlflow | shipyard
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression


def train() -> tuple[dict[str, object], np.ndarray]:
    x, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    rf = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0).fit(x, y)
    lr = LogisticRegression().fit(x, y)
    return {"rf": rf, "lr": lr}, x


def main() -> None:
    fmt, out = sys.argv[1], Path(sys.argv[2])
    models, x = train()
    out.mkdir(parents=True, exist_ok=True)
    # The request rows and their expected answers, so the harness can check every
    # server's first answer before it loads it.
    expected = {name: m.predict(x[:100]).tolist() for name, m in models.items()}  # type: ignore[attr-defined]
    (out / "expected.json").write_text(
        json.dumps({"rows": x[:100].tolist(), "predictions": expected})
    )
    for name, model in models.items():
        target = out / name
        if fmt in ("joblib", "mlserver"):
            target.mkdir(parents=True, exist_ok=True)
            joblib.dump(model, target / "model.joblib")
        elif fmt == "mlflow":
            import mlflow.sklearn
            import pandas as pd
            from mlflow.models import infer_signature

            frame = pd.DataFrame(x[:5], columns=[f"f{i}" for i in range(x.shape[1])])
            if target.exists():
                import shutil

                shutil.rmtree(target)
            mlflow.sklearn.save_model(
                model,
                str(target),
                signature=infer_signature(frame, model.predict(x[:5])),  # type: ignore[attr-defined]
                # MLflow 3's default format is skops; we made the trees ourselves.
                skops_trusted_types=["sklearn.tree._tree.Tree"],
            )
        elif fmt == "shipyard":
            import shipyard

            if target.exists():
                import shutil

                shutil.rmtree(target)
            shipyard.save_model(model, target, input_example=x[:2])  # type: ignore[attr-defined]
        else:
            raise SystemExit(f"unknown format {fmt!r}")
    (out / ".done").write_text(fmt)


if __name__ == "__main__":
    main()

"""Train a small scikit-learn model on iris and save it as ./iris-model (a Shipyard
model directory: model.joblib, shipyard.yaml, input_example.json)."""

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard

if __name__ == "__main__":
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    path = shipyard.save_model(model, "iris-model", input_example=X[:2])
    print(f"Saved {path}")

"""Continuous deployment: train, evaluate, deploy when good enough, predict.

Run it a few times with different hyperparameters:

    python examples/continuous_deployment/run.py --C 0.1     # deploys a model server
    python examples/continuous_deployment/run.py --C 1.0     # better: updates the same server
    python examples/continuous_deployment/run.py --C 0.01    # worse: the better model keeps serving

Each run trains a scikit-learn model on the breast-cancer data set that ships with
scikit-learn, measures its accuracy on held-out data, and deploys it through the active
stack's model deployer when it passes the trigger: at least ``--min-accuracy``, and no
worse than the model this pipeline has serving. The server keeps its UUID and URL across
updates. Then it sends the held-out rows to the server and checks the answers.

    shipyard model-deployer models list        # one server, with pipeline and step names
    shipyard pipeline runs list                # the runs, their steps and decisions
    shipyard model-deployer models delete UUID --yes  # stop and remove the server
"""

from __future__ import annotations

import argparse
import sys
from typing import Annotated, Any

import numpy as np

from shipyard.pipelines import PipelineRunFailedError, PipelineRunView, pipeline, step
from shipyard.steps import deployment_trigger, model_deployer_step, prediction_step

PIPELINE_NAME = "continuous_deployment"
MODEL_NAME = "breast-cancer"


@step
def load_data(
    test_size: float, seed: int
) -> tuple[
    Annotated[np.ndarray, "x_train"],
    Annotated[np.ndarray, "x_test"],
    Annotated[np.ndarray, "y_train"],
    Annotated[np.ndarray, "y_test"],
]:
    """The breast-cancer data set (bundled with scikit-learn), split for training and test."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    return x_train, x_test, y_train, y_test


@step
def train(x_train: np.ndarray, y_train: np.ndarray, C: float, max_iter: int) -> Any:
    """A scaled logistic regression; ``C`` is the inverse regularization strength."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    return model.fit(x_train, y_train)


@step
def evaluate(model: Any, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy on the held-out rows, using the saved model directory as the server will."""
    predictions = np.asarray(model.predict(x_test)).reshape(-1)
    return float(np.mean(predictions == y_test))


@step
def check_predictions(predictions: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy of the served model's answers on the held-out rows."""
    return float(np.mean(np.asarray(predictions).reshape(-1) == y_test))


@pipeline(name=PIPELINE_NAME)
def continuous_deployment(
    C: float,
    max_iter: int,
    min_accuracy: float,
    test_size: float,
    seed: int,
    timeout: float,
) -> None:
    x_train, x_test, y_train, y_test = load_data(test_size=test_size, seed=seed)
    model = train(x_train, y_train, C=C, max_iter=max_iter)
    accuracy = evaluate(model, x_test, y_test)
    decision = deployment_trigger(accuracy, threshold=min_accuracy, beat_deployed=True)
    service = model_deployer_step(model, decision, model_name=MODEL_NAME, timeout=timeout)
    predictions = prediction_step(service, x_test)
    check_predictions(predictions, y_test)


def main(argv: list[str] | None = None) -> PipelineRunView:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularization strength")
    parser.add_argument("--max-iter", type=int, default=1000, help="solver iterations")
    parser.add_argument(
        "--min-accuracy", type=float, default=0.9, help="deploy only at or above this accuracy"
    )
    parser.add_argument("--test-size", type=float, default=0.25, help="held-out fraction")
    parser.add_argument("--seed", type=int, default=42, help="split seed")
    parser.add_argument("--timeout", type=float, default=120.0, help="deploy timeout (s)")
    args = parser.parse_args(argv)
    return continuous_deployment(
        C=args.C,
        max_iter=args.max_iter,
        min_accuracy=args.min_accuracy,
        test_size=args.test_size,
        seed=args.seed,
        timeout=args.timeout,
    )


def _report(run: PipelineRunView) -> None:
    decision = run.metadata.get("deployment_decision", {})
    deployed = run.steps["model_deployer_step"]
    print(f"Run {run.id} of pipeline '{run.pipeline_name}': {run.status.value}")
    print(f"  accuracy {decision.get('metric'):.4f}: {decision.get('reason')}")
    service = deployed.output.summary
    print(f"  model server {service.get('uuid')} at {service.get('prediction_url')}")
    served = run.steps["check_predictions"].load()
    print(f"  accuracy of the served model's answers: {served:.4f}")
    print(f"  details: shipyard pipeline runs describe {run.id[:8]}")


if __name__ == "__main__":
    try:
        _report(main())
    except PipelineRunFailedError as err:
        print(err, file=sys.stderr)
        sys.exit(1)

"""The artifact store: local by default, any fsspec URL when the stack's store says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd

import shipyard
from shipyard.pipelines import StepStatus, pipeline, step
from shipyard.stack import ComponentType
from shipyard.stack.manage import register_component, register_stack
from shipyard.stack.registry import FlavorRegistry
from shipyard.store import Store

X = np.array([[0.0], [1.0], [2.0], [3.0]])


@step
def fit() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(X, np.array([0, 0, 1, 1]))


@step
def table() -> pd.DataFrame:
    return pd.DataFrame({"x": X[:, 0]})


@step
def score(model: Any, frame: pd.DataFrame) -> list[int]:
    return [int(v) for v in np.asarray(model.predict(frame.to_numpy())).reshape(-1)]


@pipeline
def train_and_score() -> None:
    score(fit(), table())


def test_a_model_output_is_a_model_directory_the_server_can_load(home: Path) -> None:
    run = train_and_score()
    artifact = run.steps["fit"].output
    assert artifact.materializer == "model"
    assert (Path(artifact.uri) / "shipyard.yaml").is_file()
    loaded = shipyard.load_model(artifact.uri)
    assert loaded.format == "sklearn"
    np.testing.assert_array_equal(loaded.predict(X), [0, 0, 1, 1])
    assert run.steps["score"].load() == [0, 0, 1, 1]


def test_an_fsspec_url_artifact_store(home: Path) -> None:
    root = f"memory://{home.parent.name}/artifacts"
    with Store.open() as store:
        registry = FlavorRegistry(store)
        register_component(
            store, registry, ComponentType.ARTIFACT_STORE, "mem", "local", {"path": root}
        )
        register_stack(
            store,
            "in-memory",
            {
                ComponentType.ARTIFACT_STORE: "mem",
                ComponentType.ORCHESTRATOR: "default",
                ComponentType.MODEL_DEPLOYER: "default",
            },
            activate=True,
        )
    first = train_and_score()
    for step_run in first.steps.values():
        assert step_run.output.uri.startswith(root + "/train_and_score/")
    fs, path = fsspec.core.url_to_fs(first.steps["fit"].output.uri)
    assert fs.exists(f"{path}/shipyard.yaml")
    assert first.steps["score"].load() == [0, 0, 1, 1]
    pd.testing.assert_frame_equal(first.steps["table"].load(), pd.DataFrame({"x": X[:, 0]}))
    assert not (home / "artifacts").exists()

    second = train_and_score()
    assert {s.status for s in second.steps.values()} == {StepStatus.CACHED}

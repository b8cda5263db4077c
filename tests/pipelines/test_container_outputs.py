"""Steps return what Python returns: lists, tuples, dicts and sets of materializable
values (nested), each item stored by its own materializer; anything else with cloudpickle
and a warning naming the versions it needs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.pipelines import pipeline, step


class Threshold:
    """A plain object no materializer knows."""

    def __init__(self, value: float) -> None:
        self.value = value


@step
def split() -> list[Any]:
    from sklearn.model_selection import train_test_split

    x = np.arange(20, dtype=float).reshape(10, 2)
    y = np.arange(10)
    return train_test_split(x, y, test_size=0.3, random_state=0)  # type: ignore[no-any-return]


@step
def mixed() -> dict[str, Any]:
    return {
        "frame": pd.DataFrame({"a": [1, 2]}),
        "pair": (np.ones(2), {"nested": [np.zeros(1), "text"]}),
        "labels": {"cat", "dog"},
        "threshold": Threshold(0.5),
    }


@step
def consume(parts: list[Any], bundle: dict[str, Any]) -> int:
    x_train, x_test, _, _ = parts
    assert isinstance(bundle["pair"], tuple) and bundle["labels"] == {"cat", "dog"}
    return len(x_train) + len(x_test) + int(bundle["threshold"].value * 10)


@pipeline
def containers() -> None:
    consume(split(), mixed())


def test_containers_are_saved_item_by_item(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shipyard.pipelines"):
        run = containers()
    assert run.steps["consume"].load() == 15
    parts = run.steps["split"].load()
    assert isinstance(parts, list) and len(parts) == 4
    np.testing.assert_array_equal(parts[2], [9, 1, 6, 7, 3, 0, 5])
    artifact = run.steps["split"].output
    assert artifact.materializer == "container"
    spec = json.loads((Path(artifact.uri) / "container.json").read_text())
    assert [i["materializer"] for i in spec["items"]] == ["numpy"] * 4
    bundle = run.steps["mixed"].load()
    pd.testing.assert_frame_equal(bundle["frame"], pd.DataFrame({"a": [1, 2]}))
    np.testing.assert_array_equal(bundle["pair"][1]["nested"][0], [0.0])
    assert bundle["pair"][1]["nested"][1] == "text" and bundle["threshold"].value == 0.5
    # Only the object nothing else takes went to cloudpickle, with the versions it needs.
    warnings = [r.getMessage() for r in caplog.records if "cloudpickle" in r.getMessage()]
    assert len(warnings) == 1 and "Threshold" in warnings[0] and "python 3." in warnings[0]


@step
def split_four() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    x = np.arange(20, dtype=float).reshape(10, 2)
    return train_test_split(x, np.arange(10), test_size=0.3, random_state=0)  # type: ignore[no-any-return]


@step
def sizes(
    x_train: np.ndarray,
    x_test: np.ndarray,
    y_train: np.ndarray,
    y_test: np.ndarray,
) -> list[int]:
    return [len(x_train), len(x_test), len(y_train), len(y_test)]


@pipeline
def four_outputs() -> None:
    sizes(*split_four())


def test_a_list_fills_declared_outputs_as_a_tuple_does(home: Path) -> None:
    # train_test_split returns a list: with four outputs declared (ZenML's Tuple[...]),
    # it is the four outputs, as ZenML takes it, not "returned list".
    run = four_outputs()
    assert run.steps["sizes"].load() == [7, 3, 7, 3]

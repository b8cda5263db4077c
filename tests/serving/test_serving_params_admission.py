"""A request with MLflow ``params`` goes through the same admission as any other: the
model's queue limit (503), its deadline (504) and the hiding of a predictor's error
text apply to it too (it used to bypass all three)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import input_type_predictors as itp
import numpy as np
import pytest

from shipyard.errors import DeadlineExceededError, OverloadedError, PredictorError
from shipyard.models import save_model
from shipyard.serving import DataPlane
from shipyard.serving.config import AdmissionConfig, BatchingConfig, ModelSpec
from shipyard.serving.metrics import Metrics
from shipyard.serving.types import InferenceRequest, Tensor
from shipyard.testing import async_wait_until

ROWS = np.asarray([[1.0, 2.0], [3.0, 4.0]])


def _plane(tmp_path: Path, **admission: Any) -> DataPlane:
    path = tmp_path / "sleepy"
    save_model(None, path, predictor=itp.Sleepy, input_example=ROWS)
    plane = DataPlane(Metrics())
    entry = plane.load_model(
        ModelSpec(uri=str(path), name="sleepy"), BatchingConfig(), AdmissionConfig(**admission)
    )
    plane.add(entry)
    return plane


def _request(**params: object) -> InferenceRequest:
    tensor = Tensor(name="input-0", datatype="FP64", shape=[2, 2], data=ROWS)
    return InferenceRequest(inputs=[tensor], params=dict(params))


def test_a_request_with_params_is_shed_when_the_queue_is_full(tmp_path: Path) -> None:
    plane = _plane(tmp_path, max_queue=1)

    async def scenario() -> None:
        busy = asyncio.create_task(plane.infer("sleepy", None, _request(sleep=1.0)))
        entry = plane.registry.get("sleepy")
        await async_wait_until(
            lambda: entry.inflight == 1, "the first request to be admitted", timeout=10
        )
        with pytest.raises(OverloadedError, match="--max-queue 1"):
            await plane.infer("sleepy", None, _request())
        answer = await busy
        assert answer.outputs[0].data.tolist() == [1.0, 3.0]

    asyncio.run(scenario())


def test_a_request_with_params_gets_the_deadline(tmp_path: Path) -> None:
    plane = _plane(tmp_path, request_timeout=0.2)
    with pytest.raises(DeadlineExceededError, match=r"within 0\.2 s"):
        asyncio.run(plane.infer("sleepy", None, _request(sleep=1.0)))


def test_a_failing_predictor_with_params_hides_its_text(tmp_path: Path) -> None:
    plane = _plane(tmp_path)
    with pytest.raises(PredictorError) as caught:
        asyncio.run(plane.infer("sleepy", None, _request(fail=True)))
    assert "secret" not in str(caught.value) and "request id" in str(caught.value)

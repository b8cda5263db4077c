"""The data plane in-process: the one inference path, batching, hot reload."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.errors import InvalidInputError, ModelLoadError, ModelNotFoundError, PredictorError
from shipyard.serving import DataPlane
from shipyard.serving.config import BatchingConfig, ModelSpec
from shipyard.serving.metrics import Metrics
from shipyard.serving.types import InferenceRequest, RequestedOutput, Tensor
from shipyard.testing import async_wait_until


def _plane(models_dir: Path, *names: str, **batching: Any) -> DataPlane:
    plane = DataPlane(Metrics())
    for name in names:
        entry = plane.load_model(ModelSpec(uri=str(models_dir / name)), BatchingConfig(**batching))
        plane.add(entry)
    return plane


def _request(data: np.ndarray, name: str = "input-0", **kw: Any) -> InferenceRequest:
    from shipyard.serving.codecs._tensors import datatype_of

    tensor = Tensor(name=name, datatype=datatype_of(data), shape=list(data.shape), data=data)
    return InferenceRequest(inputs=[tensor], **kw)


def test_metadata_and_readiness(models_dir: Path) -> None:
    plane = _plane(models_dir, "forest")
    assert plane.live() and plane.ready()
    meta = plane.model_metadata("forest")
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert meta["platform"] == "sklearn"
    assert plane.model_ready("forest")
    with pytest.raises(ModelNotFoundError, match="'nope'"):
        plane.model_ready("nope")
    with pytest.raises(ModelNotFoundError, match="version"):
        plane.model_metadata("forest", "9")


def test_infer_echoes_id_and_matches_the_model(models_dir: Path) -> None:
    import joblib

    plane = _plane(models_dir, "forest")
    x = np.random.default_rng(1).normal(size=(5, 4))
    response = asyncio.run(plane.infer("forest", None, _request(x, name="anything", id="r-9")))
    assert response.id == "r-9"
    (out,) = response.outputs
    forest = joblib.load(models_dir / "forest" / "model.joblib")
    np.testing.assert_array_equal(out.data, forest.predict(x))
    assert out.datatype == "INT64" and out.shape == [5]


def test_custom_pre_and_postprocessing(models_dir: Path) -> None:
    plane = _plane(models_dir, "iris")
    x = np.array([[3.0, 3.0, 0.0, 0.0], [-3.0, -3.0, 0.0, 0.0]])
    response = asyncio.run(plane.infer("iris", None, _request(x)))
    (label,) = response.outputs
    assert label.name == "label" and label.datatype == "BYTES"
    assert label.data.tolist() == [b"large", b"small"]
    request = _request(x, outputs=[RequestedOutput(name="nope")])
    with pytest.raises(InvalidInputError, match="'nope'"):
        asyncio.run(plane.infer("iris", None, request))


def test_signature_violations(models_dir: Path) -> None:
    plane = _plane(models_dir, "strict")
    bad = np.array([[1.0, np.nan, 0.0, 0.0]])
    with pytest.raises(InvalidInputError, match="NaN"):
        asyncio.run(plane.infer("strict", None, _request(bad, name="x")))
    with pytest.raises(InvalidInputError, match="axis 1"):
        asyncio.run(plane.infer("strict", None, _request(np.ones((1, 3)), name="x")))
    with pytest.raises(InvalidInputError, match="cannot be cast"):
        asyncio.run(
            plane.infer("strict", None, _request(np.array([[b"a"] * 4], dtype=object), name="x"))
        )


async def _concurrent(plane: DataPlane, name: str, n: int) -> list[Any]:
    rows = [np.full((1, 4), float(i)) for i in range(n)]
    return await asyncio.gather(*(plane.infer(name, None, _request(r)) for r in rows))


def test_concurrent_requests_form_batches_and_get_their_own_rows(models_dir: Path) -> None:
    plane = _plane(models_dir, "sleepy", executor="thread")
    assert plane.metrics is not None
    responses = asyncio.run(_concurrent(plane, "sleepy", 48))
    # Each answer is its own row's sum, whatever batch it rode in.
    assert [r.outputs[0].data.tolist() for r in responses] == [[4.0 * i] for i in range(48)]
    snapshot = plane.metrics.snapshot()
    (series,) = [v for n, _, v in snapshot["histograms"] if n == "shipyard_batch_requests"]
    count, total = series[0], series[1]
    assert total == 48
    assert count < 48, "no two requests shared a predict call"


def test_batching_off_and_oversized_requests_run_alone(models_dir: Path) -> None:
    plane = _plane(models_dir, "sleepy", enabled=False)
    assert plane.registry.get("sleepy").batcher is None
    plane = _plane(models_dir, "sleepy", max_batch_size=2)
    response = asyncio.run(plane.infer("sleepy", None, _request(np.ones((5, 4)))))
    assert response.outputs[0].data.tolist() == [4.0] * 5


def test_a_bad_request_does_not_fail_its_batch(models_dir: Path) -> None:
    plane = _plane(models_dir, "raises", executor="thread")

    async def run() -> list[Any]:
        good = [plane.infer("raises", None, _request(np.ones((1, 2)))) for _ in range(10)]
        bad = plane.infer("raises", None, _request(-np.ones((1, 2))))
        return await asyncio.gather(*good, bad, return_exceptions=True)

    results = asyncio.run(run())
    assert all(r.outputs[0].data.tolist() == [[2.0, 2.0]] for r in results[:10])
    assert isinstance(results[10], PredictorError)
    assert "negative values" in str(results[10])


def test_reload_swaps_only_a_healthy_model(models_dir: Path) -> None:
    plane = _plane(models_dir, "const1")

    async def run() -> None:
        before = await plane.infer("const1", None, _request(np.ones((1, 4))))
        assert before.outputs[0].data.tolist() == [1.0]
        with pytest.raises(ModelLoadError, match="health check"):
            await plane.prepare_reload(str(models_dir / "broken"), "const1")
        with pytest.raises(ModelLoadError):
            await plane.prepare_reload(str(models_dir / "missing"), "const1")
        still = await plane.infer("const1", None, _request(np.ones((1, 4))))
        assert still.outputs[0].data.tolist() == [1.0]
        handle = await plane.prepare_reload(str(models_dir / "const2"), "const1")
        # Prepared is not served yet.
        pending = await plane.infer("const1", None, _request(np.ones((1, 4))))
        assert pending.outputs[0].data.tolist() == [1.0]
        plane.commit_reload(handle)
        after = await plane.infer("const1", None, _request(np.ones((1, 4))))
        assert after.outputs[0].data.tolist() == [2.0]

    asyncio.run(run())


def test_fortran_ordered_answers_encode(models_dir: Path) -> None:
    from shipyard.serving.codecs import kserve_v1, v2

    plane = _plane(models_dir, "raises")
    x = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    response = asyncio.run(plane.infer("raises", None, _request(x)))
    body, _ = v2.encode_response(response)
    assert b'"data":[0.0,2.0,4.0,6.0,8.0,10.0]' in body
    assert kserve_v1.encode_response(response) == b'{"predictions":[[0.0,2.0,4.0],[6.0,8.0,10.0]]}'


def test_a_failing_batch_hook_never_leaves_requests_waiting() -> None:
    from shipyard.serving.batching import AdaptiveBatcher

    async def predict(x: Any) -> Any:
        return x

    def on_batch(rows: int, requests: int) -> None:
        raise RuntimeError("metrics exploded")

    batcher = AdaptiveBatcher(predict, BatchingConfig(), predictor_name="P", on_batch=on_batch)

    async def run() -> list[Any]:
        calls = [batcher.submit(np.ones((1, 2))) for _ in range(5)]
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)

    results = asyncio.run(run())
    assert all(isinstance(r, RuntimeError) for r in results)


def test_a_lone_request_predicts_at_once_and_never_beside_a_batch() -> None:
    from shipyard.serving.batching import AdaptiveBatcher

    calls: list[int] = []
    running = peak = 0
    gate = asyncio.Event()

    async def predict(x: Any) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        calls.append(len(x))
        if len(calls) == 1:
            await gate.wait()  # the lone call is still predicting while others arrive
        running -= 1
        return x

    batcher = AdaptiveBatcher(predict, BatchingConfig(), predictor_name="P")

    async def run() -> list[Any]:
        first = asyncio.ensure_future(batcher.submit(np.zeros((1, 2))))
        await async_wait_until(lambda: calls, "the lone call to start", interval=0)
        rest = [asyncio.ensure_future(batcher.submit(np.full((1, 2), float(i)))) for i in (1, 2)]
        for _ in range(10):
            await asyncio.sleep(0)
        assert calls == [1], "a queued request started predicting beside the lone call"
        gate.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest), 30)

    results = asyncio.run(run())
    assert [r.tolist() for r in results] == [[[float(i)] * 2] for i in range(3)]
    assert calls == [1, 2], "the requests queued meanwhile should share one predict"
    assert peak == 1

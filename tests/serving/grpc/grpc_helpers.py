"""Models the gRPC tests serve, and a gRPC stub helper for in-process servers. Test
modules import what they use from here.

Not a conftest.py on purpose: test modules in tests/serving import names from
``conftest``, and with a second conftest module in a subfolder, whichever pytest
imported last would answer to that name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import grpc_predictors as gp
import numpy as np
from sklearn.linear_model import LogisticRegression

from shipyard.models import save_model
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.grpc import GrpcServerHandle, start_grpc_server
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc

RNG = np.random.default_rng(7)
FEATURES = RNG.normal(size=(120, 4))
LABELS = (FEATURES[:, 0] - FEATURES[:, 2] > 0).astype(np.int64)


def save_grpc_models(root: Path) -> Path:
    """Save a model directory per name under ``root``: logistic (sklearn), shout, picky,
    dawdle, ponder (see grpc_predictors); returns ``root``."""
    save_model(
        LogisticRegression().fit(FEATURES, LABELS), root / "logistic", input_example=FEATURES[:2]
    )
    for name, cls in (
        ("shout", gp.Shout),
        ("picky", gp.Picky),
        ("dawdle", gp.Dawdle),
        ("ponder", gp.Ponder),
    ):
        save_model(None, root / name, predictor=cls)
    return root


@contextlib.asynccontextmanager
async def serving(
    dataplane: DataPlane, **options: Any
) -> AsyncIterator[tuple[GrpcServerHandle, pb_grpc.GRPCInferenceServiceStub]]:
    """A real gRPC server for ``dataplane`` on 127.0.0.1 and a client stub talking to it."""
    handle = await start_grpc_server(dataplane, "127.0.0.1", 0, **options)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
            yield handle, pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
    finally:
        await handle.stop(0)


def infer_request(
    rows: np.ndarray[Any, Any], *, model: str = "logistic", raw: bool = True, request_id: str = ""
) -> Any:
    """A ModelInferRequest of one FP64 tensor, raw or as typed contents."""
    request = pb.ModelInferRequest(model_name=model, id=request_id)
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=list(rows.shape))
    if raw:
        request.raw_input_contents.append(rows.astype("<f8").tobytes())
    else:
        tensor.contents.fp64_contents.extend(rows.ravel().tolist())
    return request

"""Protocol-neutral inference request and response, the currency of the data plane.

Every transport (REST V2, gRPC V2, MLflow, KServe V1, Seldon) decodes into an
``InferenceRequest`` and encodes from an ``InferenceResponse``; the data plane never
sees a wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "InferenceRequest",
    "InferenceResponse",
    "RequestedOutput",
    "Tensor",
]


@dataclass(slots=True)
class Tensor:
    """A named tensor: ``data`` is a numpy array of ``shape`` (``dtype=object`` for BYTES)."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray[Any, Any]
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InferenceRequest:
    inputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] | None = None
    #: Set by transports whose payload is a table (MLflow ``dataframe_split``/CSV):
    #: the predictor then receives a pandas DataFrame instead of arrays.
    dataframe: Any | None = None
    #: MLflow's ``params`` (an ``/invocations`` body's inference parameters): passed to a
    #: predictor whose ``predict`` takes ``params``, refused for any other.
    params: dict[str, Any] | None = None


@dataclass(slots=True)
class InferenceResponse:
    model_name: str
    outputs: list[Tensor]
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

"""``map<string, InferParameter>`` to and from plain Python values.

Python ``bool``/``int``/``str``/``float`` map onto the oneof (``float`` and ints past
int64 use Triton's ``double_param``/``uint64_param``); any other value a predictor
puts in its response parameters travels as a JSON ``string_param`` rather than failing
the whole response.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb

__all__ = ["decode_parameters", "encode_parameters"]

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def decode_parameters(params: Mapping[str, pb.InferParameter], where: str) -> dict[str, Any]:
    """Plain values of a parameters map; ``where`` names its owner in error messages."""
    out: dict[str, Any] = {}
    if not params:  # the common case, and iterating an empty protobuf map is not free
        return out
    for key, param in params.items():
        choice = param.WhichOneof("parameter_choice")
        if choice is None:
            raise InvalidInputError(
                f"Parameter '{key}' of {where} has no value; set one of bool_param, "
                "int64_param, string_param, double_param or uint64_param."
            )
        out[key] = getattr(param, choice)
    return out


def encode_parameters(values: Mapping[str, Any], target: MutableMapping[str, Any]) -> None:
    """Fill the protobuf map ``target`` from plain values."""
    for key, value in values.items():
        _set(target[key], value)


def _set(param: pb.InferParameter, value: Any) -> None:
    if isinstance(value, np.generic):
        value = value.item()
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        param.bool_param = value
    elif isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        param.int64_param = value
    elif isinstance(value, int) and 0 <= value <= _UINT64_MAX:
        param.uint64_param = value
    elif isinstance(value, float):
        param.double_param = value
    elif isinstance(value, str):
        param.string_param = value
    else:
        param.string_param = json.dumps(value, default=str)

"""Data that cannot be sent to a model server: one clear BadRequestError, nothing sent."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.deployers.local import LocalModelServer
from shipyard.errors import BadRequestError


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "non-empty list of numbers"),
        ("abc", "rectangular list of numbers"),
        ([["a", 1, 2, 3]], "rectangular list of numbers"),
        ([[1, 2, 3, 4], [1, 2]], "rectangular list of numbers"),
        ([{"a": 1}], "rectangular list of numbers"),
        ([], "non-empty list of numbers"),
        ([[None, 1, 2, 3]], "null, NaN or infinity"),
        ([[float("nan"), 1, 2, 3]], "null, NaN or infinity"),
        ({"inputs": [{"data": [float("inf")]}]}, "NaN, infinity"),
    ],
)
def test_bad_rows_are_refused_before_anything_is_sent(data: Any, reason: str) -> None:
    # Never started: the data is checked before the server is even looked at.
    server = LocalModelServer()
    with pytest.raises(BadRequestError, match=reason):
        server.predict(data)

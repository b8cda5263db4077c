"""``--data`` for ``shipyard predict`` and ``shipyard model predict``: every shape a data
scientist already has, read into rows, a table or a V2 request.

Accepted: rows (``[[1, 2], [3, 4]]``), records (``[{"a": 1, "b": 2}]``), columns
(``{"a": [1, 3], "b": [2, 4]}``), MLflow's ``{"dataframe_split": ...}``,
``{"dataframe_records": ...}``, ``{"instances": ...}`` and ``{"inputs": ...}``, a V2
request (``{"inputs": [{"name": ..., "datatype": ..., ...}]}``), and ``@file.json`` /
``@file.csv`` holding any of those (a CSV is a table with a header row).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from shipyard.cli._shared import read_json_argument
from shipyard.errors import BadRequestError

__all__ = ["EXAMPLES", "read_data"]

EXAMPLES = (
    "rows like '[[1, 2, 3]]', records like '[{\"a\": 1, \"b\": 2}]', columns like "
    '\'{"a": [1, 2], "b": [3, 4]}\', MLflow\'s \'{"dataframe_split": ...}\', a V2 request '
    '\'{"inputs": [{"name": ...}]}\', or @file.csv'
)


def _frame(value: Any, what: str) -> Any:
    import pandas as pd

    try:
        if what == "dataframe_split":
            if not isinstance(value, dict) or not isinstance(value.get("data"), list):
                raise BadRequestError('"dataframe_split" needs a "data" list (and "columns").')
            frame = pd.DataFrame(value["data"], columns=value.get("columns"))
        elif what == "columns":
            frame = pd.DataFrame(value)
        else:
            frame = pd.DataFrame.from_records(value)
    except (ValueError, TypeError) as err:
        raise BadRequestError(f"The {what} do not form a table: {err}. Give {EXAMPLES}.") from err
    if frame.empty:
        raise BadRequestError(f"The {what} have no rows; send at least one.")
    return frame


def _is_v2(payload: dict[str, Any]) -> bool:
    inputs = payload.get("inputs")
    return (
        isinstance(inputs, list)
        and bool(inputs)
        and all(isinstance(t, dict) and "datatype" in t for t in inputs)
    )


def _from_json(payload: Any) -> Any:
    if isinstance(payload, list):
        if payload and all(isinstance(r, dict) for r in payload):
            return _frame(payload, "records")
        return payload
    if not isinstance(payload, dict):
        return payload  # a scalar: refused, saying why, where rows are checked
    if not payload:
        raise BadRequestError(f"The request data is an empty object; give {EXAMPLES}.")
    if _is_v2(payload):
        return payload
    if len(payload) == 1:
        ((key, value),) = payload.items()
        if key in ("dataframe_split", "dataframe_records"):
            return _frame(value, key)
        if key in ("instances", "inputs"):
            return _from_json(value)
    if all(isinstance(v, list) for v in payload.values()):
        if all(not isinstance(x, (list, dict)) for v in payload.values() for x in v):
            return _frame(payload, "columns")
        return _named_inputs(payload)
    raise BadRequestError(
        f"The request data has keys {', '.join(map(repr, payload))} but is not a table "
        f"(each key a list of values) nor a V2 request; give {EXAMPLES}."
    )


def _named_inputs(payload: dict[str, Any]) -> dict[str, Any]:
    """Named multi-dimensional inputs (``{"image": [[...]]}``): one array each."""
    import numpy as np

    try:
        return {str(k): np.asarray(v) for k, v in payload.items()}
    except ValueError as err:
        raise BadRequestError(f"The named inputs are not rectangular arrays: {err}") from err


def read_data(data: str) -> Any:
    """The ``--data`` value as rows (a list), a DataFrame, or a V2 request dict."""
    if data.startswith("@") and Path(data[1:]).suffix.lower() == ".csv":
        import pandas as pd

        path = Path(data[1:]).expanduser()
        try:
            text = path.read_text()
            frame = pd.read_csv(io.StringIO(text))
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise BadRequestError(f"Cannot read the request data from {path}: {err}") from err
        if frame.empty:
            raise BadRequestError(f"{path} has no data rows; give a header row and rows.")
        return frame
    return _from_json(read_json_argument(data, "request data", EXAMPLES))

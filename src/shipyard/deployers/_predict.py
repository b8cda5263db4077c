"""Sending data to a model server from the control plane (``Service.predict``): a V2
request, rows as one FP64 tensor, or a DataFrame to ``/invocations``. Every flavor whose
server speaks HTTP+JSON posts through ``post_json``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipyard.errors import BadRequestError, ServiceError
from shipyard.services.service import Service

if TYPE_CHECKING:
    import httpx

__all__ = ["post_json", "predict_over_v2", "rows_tensor"]


def post_json(
    service: Service,
    url: str | None,
    body: Any,
    *,
    unreachable: str = "",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST ``body`` as JSON to ``url`` with ``service``'s request headers (and
    ``headers``); the response, whatever its status. BadRequestError for a body JSON
    cannot carry, found before anything is sent; ServiceError when there is no ``url``
    (``unreachable`` says why; default: the server is not running) or the request does
    not get through."""
    import httpx

    try:
        # JSON has no NaN or infinity: find them before anything is sent.
        content = json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise BadRequestError(
            f"The request cannot be sent as JSON ({err}); NaN, infinity and "
            "non-JSON values are not allowed."
        ) from err
    if url is None:
        raise ServiceError(
            unreachable
            or f"The model server {service.uuid} is not running; start it with "
            f"`shipyard model-deployer models start {service.uuid}`."
        )
    try:
        return httpx.post(
            url,
            content=content,
            headers={
                "content-type": "application/json",
                **service.request_headers(),
                **(headers or {}),
            },
            timeout=60.0,
        )
    except httpx.HTTPError as err:
        raise ServiceError(f"POST {url} failed: {err}") from err


def predict_over_v2(service: Service, data: Any) -> Any:
    """POST ``data`` to ``service`` (see ``LocalModelServer.predict``)."""
    import numpy as np

    raw = isinstance(data, dict)
    table = type(data).__name__ == "DataFrame"
    # A table goes to /invocations, where the server matches its columns by name.
    body = _table_body(data) if table else data if raw else {"inputs": [rows_tensor(data)]}
    url = getattr(service, "invocations_url", None) if table else service.prediction_url
    response = post_json(service, url if service.is_running else None, body)
    if 400 <= response.status_code < 500:
        # The caller's data: the server's one-line reason, as a caller's mistake.
        try:
            reason = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            reason = response.text
        raise BadRequestError(f"The model server {service.uuid} refused the data: {reason}")
    if response.status_code != 200:
        raise ServiceError(f"POST {url} answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    if raw:
        return answer
    if table:
        return np.asarray(answer["predictions"])
    output = answer["outputs"][0]
    return np.asarray(output["data"]).reshape(output["shape"])


def _table_body(frame: Any) -> dict[str, Any]:
    """A DataFrame as MLflow's ``dataframe_split``; missing values travel as null."""
    values = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return {"dataframe_split": {"columns": [str(c) for c in frame.columns], "data": values}}


def rows_tensor(data: Any) -> dict[str, Any]:
    """Rows (a list of lists of numbers, or one row) as a V2 FP64 tensor named input-0."""
    import numpy as np

    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise BadRequestError(
            "The rows must be a rectangular list of numbers like [[1, 2, 3]] (or give a V2 "
            f'request {{"inputs": [...]}}); got {_preview(data)}: {err}'
        ) from err
    if array.ndim == 0 or array.size == 0:
        raise BadRequestError(
            "The rows must be a non-empty list of numbers like [[1, 2, 3]] (or give a V2 "
            f'request {{"inputs": [...]}}); got {_preview(data)}.'
        )
    if not np.isfinite(array).all():
        raise BadRequestError(
            "The rows contain null, NaN or infinity, which JSON cannot carry; "
            "replace them with numbers (impute missing values first)."
        )
    if array.ndim == 1:
        array = array.reshape(1, -1)
    return {
        "name": "input-0",
        "shape": list(array.shape),
        "datatype": "FP64",
        "data": array.ravel().tolist(),
    }


def _preview(data: Any, limit: int = 60) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."

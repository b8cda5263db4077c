"""Send batches to a running model server (Open Inference Protocol, REST) instead.

For users who want the online model's exact behaviour: the server's own predictor,
pre- and post-processing run on every batch. The service is a V2 model URL
(``http://host:port/v2/models/NAME``), or the name or UUID of a model server in the
Shipyard registry, resolved to its URL through the control plane.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.batch._runtime import Runtime
from shipyard.errors import (
    ConfigError,
    InvalidInputError,
    PredictorError,
    ServiceError,
    ServiceNotFoundError,
)

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa

__all__ = ["RemoteRuntime", "resolve_service"]

_V2_DTYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def resolve_service(name_or_url: str) -> str:
    """The V2 model URL of a service: a URL as given, else looked up in the registry."""
    if name_or_url.startswith(("http://", "https://")):
        return name_or_url.rstrip("/")
    try:
        from shipyard.services import lookup_service_url  # type: ignore[attr-defined]
    except ImportError as err:
        raise ConfigError(
            f"Cannot look up the model server {name_or_url!r}: this installation has no "
            "service registry. Pass its URL instead, e.g. --service "
            "http://127.0.0.1:8080/v2/models/NAME."
        ) from err
    url = lookup_service_url(name_or_url)
    if not url:
        raise ServiceNotFoundError(
            f"No model server named {name_or_url!r} in the registry; list them with "
            "`shipyard service list`, or pass a URL."
        )
    return str(url).rstrip("/")


def _v2_datatype(arr: np.ndarray[Any, Any]) -> str:
    for name, dt in _V2_DTYPES.items():
        if arr.dtype == np.dtype(dt):
            return name
    return "BYTES"


class RemoteRuntime(Runtime):
    """One HTTP connection per worker; each batch is one ``infer`` request."""

    def __init__(self, url: str, *, timeout: float = 120.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client: httpx.Client = httpx.Client(timeout=timeout)
        try:
            resp = self._client.get(self.url)
        except httpx.HTTPError as err:
            raise ServiceError(
                f"Cannot reach the model server at {self.url}: {err}. Is it running?"
            ) from err
        if resp.status_code != 200:
            raise ServiceError(
                f"{self.url} answered {resp.status_code} to a model metadata request: "
                f"{resp.text[:300]}. Pass the model's V2 URL, e.g. "
                "http://127.0.0.1:8080/v2/models/NAME."
            )
        meta = resp.json()
        self.name = str(meta.get("name", "model"))
        self.inputs: list[dict[str, Any]] = list(meta.get("inputs") or [])

    def features_default(self) -> list[str] | None:
        if len(self.inputs) > 1:
            return [str(i["name"]) for i in self.inputs]
        return None

    def _request(self, batch: pa.RecordBatch, features: list[str]) -> dict[str, Any]:
        n = batch.num_rows
        if len(self.inputs) > 1:
            tensors = []
            for spec in self.inputs:
                arr = batch.column(spec["name"]).to_numpy(zero_copy_only=False)
                dt = _V2_DTYPES.get(spec.get("datatype", ""))
                if dt is not None:
                    arr = arr.astype(dt)
                tensors.append(
                    {
                        "name": spec["name"],
                        "datatype": spec.get("datatype") or _v2_datatype(arr),
                        "shape": [n],
                        "data": arr.tolist(),
                    }
                )
            return {"inputs": tensors}
        cols = [batch.column(f).to_numpy(zero_copy_only=False) for f in features]
        matrix = np.column_stack(cols) if cols else np.empty((n, 0))
        spec = self.inputs[0] if self.inputs else {}
        dt = _V2_DTYPES.get(spec.get("datatype", ""))
        if dt is not None:
            matrix = matrix.astype(dt)
        return {
            "inputs": [
                {
                    "name": spec.get("name", "input-0"),
                    "datatype": spec.get("datatype") or _v2_datatype(matrix),
                    "shape": list(matrix.shape),
                    "data": matrix.reshape(-1).tolist(),
                }
            ]
        }

    def run(self, batch: pa.RecordBatch, features: list[str]) -> pa.Table:
        import httpx
        import pyarrow as pa

        try:
            body = json.dumps(self._request(batch, features)).encode()
        except (ValueError, TypeError) as err:
            raise InvalidInputError(f"Columns {features} do not fit {self.url}: {err}") from err
        try:
            resp = self._client.post(
                self.url + "/infer", content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as err:
            raise ServiceError(f"The request to {self.url}/infer failed: {err}") from err
        if resp.status_code != 200:
            try:
                message = resp.json().get("error", resp.text)
            except ValueError:
                message = resp.text
            cls = InvalidInputError if 400 <= resp.status_code < 500 else PredictorError
            if resp.status_code in (404, 503):
                raise ServiceError(f"{self.url} answered {resp.status_code}: {message}")
            raise cls(f"{self.url} answered {resp.status_code}: {message}")
        outputs = resp.json().get("outputs") or []
        cols: dict[str, Any] = {}
        single = len(outputs) == 1
        for out in outputs:
            name = "prediction" if single else str(out["name"])
            arr = np.asarray(out["data"])
            dt = _V2_DTYPES.get(out.get("datatype", ""))
            if dt is not None:
                arr = arr.astype(dt)
            shape = [int(d) for d in out.get("shape") or [arr.size]]
            arr = arr.reshape(shape)
            if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
                cols[name] = pa.array(arr.reshape(-1))
            else:
                flat = arr.reshape(arr.shape[0], -1)
                for i in range(flat.shape[1]):
                    cols[f"{name}_{i}"] = pa.array(np.ascontiguousarray(flat[:, i]))
        table = pa.table(cols)
        if table.num_rows != batch.num_rows:
            raise PredictorError(
                f"{self.url} returned {table.num_rows} rows for {batch.num_rows} input rows."
            )
        return table

    def close(self) -> None:
        self._client.close()

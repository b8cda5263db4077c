"""Send batches to a running model server (Open Inference Protocol, REST) instead.

For users who want the online model's exact behaviour: the server's own predictor,
pre- and post-processing run on every batch. The service is a V2 model URL
(``http://host:port/v2/models/NAME``), or the name or UUID of a model server in the
Shipyard registry, resolved to its URL through the control plane.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.batch._scorer import ColumnTypeError, Scorer, column_array
from shipyard.errors import (
    ConfigError,
    InvalidInputError,
    PredictorError,
    ServiceError,
)
from shipyard.models import datatype_for_dtype, dtype_for_datatype
from shipyard.models.manifest import DATATYPES

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa

__all__ = ["RemoteScorer", "resolve_service", "service_headers"]


def service_headers(service: object) -> dict[str, str] | None:
    """The headers a registry Service wants on every request (its bearer token); None
    for a plain URL (a server of one's own, with no token)."""
    headers = getattr(service, "request_headers", None)
    return dict(headers()) if callable(headers) else None


def resolve_service(service: object) -> str:
    """The V2 model URL of ``service``: a URL string, or a Service object of the registry.

    Names and UUIDs are resolved by the caller (the CLI asks the control plane), so the
    data plane never imports it.
    """
    if isinstance(service, str):
        if service.startswith(("http://", "https://")):
            return service.rstrip("/").removesuffix("/infer")
        raise ConfigError(
            f"--service {service!r} is not a URL; give the model's V2 URL "
            "(http://HOST:PORT/v2/models/NAME), or use the CLI, which looks names and "
            "UUIDs up in the model server registry."
        )
    found = getattr(service, "prediction_url", None)
    if not isinstance(found, str) or not found:
        raise ServiceError(
            f"The model server {service} has no prediction URL (is it running?); start it "
            "first, e.g. `shipyard model-deployer models start UUID`."
        )
    return found.rstrip("/").removesuffix("/infer")


def _v2_datatype(arr: np.ndarray[Any, Any]) -> str:
    try:
        return datatype_for_dtype(arr.dtype)
    except InvalidInputError:
        return "BYTES"  # sent as text; the server names the problem if it is one


def _numeric_dtype(datatype: str | None) -> np.dtype[Any] | None:
    """The numpy dtype of a numeric V2 datatype; None for BYTES or an unknown name."""
    if datatype is None or datatype == "BYTES" or datatype not in DATATYPES:
        return None
    return dtype_for_datatype(datatype)


class RemoteScorer(Scorer):
    """One HTTP connection per worker; each batch is one ``infer`` request."""

    def __init__(
        self, url: str, *, timeout: float = 120.0, headers: dict[str, str] | None = None
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client: httpx.Client = httpx.Client(timeout=timeout, headers=headers)
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

    def _tensors(
        self, batch: pa.RecordBatch, features: list[str]
    ) -> list[tuple[str, np.ndarray[Any, Any]]]:
        """(input name, array) pairs: one 2-D tensor, or one 1-D tensor per named input."""
        if len(self.inputs) > 1:
            pairs = []
            for spec in self.inputs:
                name = str(spec["name"])
                pairs.append((name, self._cast(batch, name, spec.get("datatype"))))
            return pairs
        spec = self.inputs[0] if self.inputs else {}
        shape = spec.get("shape") or []
        if len(shape) == 2 and shape[1] not in (-1, len(features)):
            raise ColumnTypeError(
                f"the model server takes {shape[1]} columns, these are {len(features)} "
                f"({', '.join(features)}); choose them with --columns"
            )
        cols = [self._cast(batch, f, spec.get("datatype")) for f in features]
        matrix = np.column_stack(cols) if cols else np.empty((batch.num_rows, 0))
        return [(str(spec.get("name", "input-0")), matrix)]

    @staticmethod
    def _cast(batch: pa.RecordBatch, name: str, datatype: str | None) -> np.ndarray[Any, Any]:
        taker = f"the model server ({datatype})"
        return column_array(batch, name, _numeric_dtype(datatype), taker)

    def _body(self, tensors: list[tuple[str, np.ndarray[Any, Any]]]) -> tuple[bytes, int | None]:
        """A V2 request using the binary tensor extension for numeric tensors."""
        header: list[dict[str, Any]] = []
        blobs: list[bytes] = []
        for name, arr in tensors:
            datatype = _v2_datatype(arr)
            item: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
            if datatype == "BYTES":
                item["data"] = [str(v) for v in arr.reshape(-1)]
            else:
                blob = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
                item["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            header.append(item)
        head = json.dumps({"inputs": header, "parameters": {"binary_data_output": True}}).encode()
        if not blobs:
            return head, None
        return head + b"".join(blobs), len(head)

    def run(self, batch: pa.RecordBatch, features: list[str]) -> pa.Table:
        import httpx
        import pyarrow as pa

        body, header_length = self._body(self._tensors(batch, features))
        headers = {
            "content-type": "application/octet-stream" if header_length else "application/json"
        }
        if header_length is not None:
            headers["inference-header-content-length"] = str(header_length)
        try:
            resp = self._client.post(self.url + "/infer", content=body, headers=headers)
        except httpx.HTTPError as err:
            raise ServiceError(f"The request to {self.url}/infer failed: {err}") from err
        if resp.status_code != 200:
            try:
                message = resp.json().get("error", resp.text)
            except ValueError:
                message = resp.text
            if resp.status_code in (404, 503):
                raise ServiceError(f"{self.url} answered {resp.status_code}: {message}")
            cls = InvalidInputError if 400 <= resp.status_code < 500 else PredictorError
            raise cls(f"{self.url} answered {resp.status_code}: {message}")
        outputs = _decode_outputs(resp)
        cols: dict[str, Any] = {}
        for name, arr in outputs:
            col = "prediction" if len(outputs) == 1 else name
            if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
                cols[col] = pa.array(arr.reshape(-1))
            else:
                flat = arr.reshape(arr.shape[0], -1)
                for i in range(flat.shape[1]):
                    cols[f"{col}_{i}"] = pa.array(np.ascontiguousarray(flat[:, i]))
        table = pa.table(cols)
        if table.num_rows != batch.num_rows:
            raise PredictorError(
                f"{self.url} returned {table.num_rows} rows for {batch.num_rows} input rows."
            )
        return table

    def close(self) -> None:
        self._client.close()


def _decode_outputs(resp: httpx.Response) -> list[tuple[str, np.ndarray[Any, Any]]]:
    """The outputs of a V2 response, JSON or with binary tensors."""
    raw = resp.content
    length = resp.headers.get("inference-header-content-length")
    head_len = int(length) if length is not None else len(raw)
    body = json.loads(raw[:head_len])
    binary = raw[head_len:]
    offset = 0
    result = []
    for out in body.get("outputs") or []:
        datatype = out.get("datatype", "")
        shape = [int(d) for d in out.get("shape") or []]
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            chunk = binary[offset : offset + int(size)]
            offset += int(size)
            if datatype == "BYTES":
                items, pos = [], 0
                while pos < len(chunk):
                    (n,) = struct.unpack_from("<I", chunk, pos)
                    items.append(chunk[pos + 4 : pos + 4 + n].decode("utf-8", "replace"))
                    pos += 4 + n
                arr = np.asarray(items, dtype=object)
            else:
                arr = np.frombuffer(chunk, dtype=dtype_for_datatype(datatype).newbyteorder("<"))
        else:
            arr = np.asarray(out.get("data"))
            dt = _numeric_dtype(datatype)
            if dt is not None:
                arr = arr.astype(dt)
        result.append((str(out.get("name")), arr.reshape(shape) if shape else arr))
    return result

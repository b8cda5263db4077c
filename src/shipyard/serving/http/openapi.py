"""The OpenAPI 3 document of the server's routes, written by hand (no framework makes it).

Schema-driven fuzzers (schemathesis) and API explorers read it from ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from shipyard import __version__
from shipyard.models.manifest import DATATYPES

__all__ = ["openapi_document"]

_ERROR = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            }
        }
    },
}
_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {
            "type": "string",
            "enum": list(DATATYPES),
        },
        "parameters": {"type": "object"},
        "data": {},
    },
}
_INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": _TENSOR},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
            },
        },
    },
}
_ANY_JSON: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
_MODEL_QUERY = {"name": "model", "in": "query", "required": False, "schema": {"type": "string"}}


def _get(summary: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params or [],
            "responses": {"200": {"description": "OK", "content": _ANY_JSON}, "default": _ERROR},
        }
    }


def _post(
    summary: str, schema: dict[str, Any], params: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": params or [],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            },
            "responses": {"200": {"description": "OK", "content": _ANY_JSON}, "default": _ERROR},
        }
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of every route."""
    mlflow_body = {
        "type": "object",
        "properties": {
            "dataframe_split": {"type": "object"},
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {"type": "array"},
            "inputs": {},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Shipyard model server", "version": __version__},
        "paths": {
            "/v2/health/live": _get("Server liveness"),
            "/v2/health/ready": _get("Server readiness (every model loaded)"),
            "/v2": _get("Server metadata"),
            "/v2/models/{name}": _get("Model metadata", [_NAME]),
            "/v2/models/{name}/ready": _get("Model readiness", [_NAME]),
            "/v2/models/{name}/versions/{version}": _get("Model metadata", [_NAME, _VERSION]),
            "/v2/models/{name}/versions/{version}/ready": _get(
                "Model readiness", [_NAME, _VERSION]
            ),
            "/v2/models/{name}/infer": _post(
                "Open Inference Protocol infer", _INFER_REQUEST, [_NAME]
            ),
            "/v2/models/{name}/versions/{version}/infer": _post(
                "Open Inference Protocol infer", _INFER_REQUEST, [_NAME, _VERSION]
            ),
            "/invocations": _post("MLflow scoring", mlflow_body, [_MODEL_QUERY]),
            "/ping": _get("MLflow health"),
            "/version": _get("Server version (plain text, as MLflow answers)"),
            "/health": _get("MLflow health"),
            "/v1/models/{name}:predict": _post(
                "KServe V1 predict",
                {"type": "object", "properties": {"instances": {"type": "array"}}},
                [_NAME],
            ),
            "/v1/models/{name}": _get("KServe V1 model status", [_NAME]),
            "/api/v0.1/predictions": _post(
                "Seldon predict",
                {"type": "object", "properties": {"data": {"type": "object"}}},
                [_MODEL_QUERY],
            ),
            "/metrics": _get("Prometheus metrics"),
        },
    }

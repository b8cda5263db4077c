"""The addresses of a Shipyard model server (V2 protocol, plus MLflow's ``/invocations``)
as the control plane names them: a flavor uses these instead of spelling the paths."""

from __future__ import annotations

__all__ = ["READY_PATH", "infer_url", "invocations_url"]

#: Readiness of every model: a health check, a pod's readiness probe.
READY_PATH = "/v2/health/ready"


def infer_url(base: str | None, model: str) -> str | None:
    """Where ``model`` on the server at ``base`` takes V2 requests (None: no address)."""
    return None if base is None else f"{base}/v2/models/{model}/infer"


def invocations_url(base: str | None) -> str | None:
    """Where the server at ``base`` takes MLflow-style requests (None: no address)."""
    return None if base is None else f"{base}/invocations"

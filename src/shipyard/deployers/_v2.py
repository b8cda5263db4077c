"""The addresses of a Shipyard model server (V2 protocol, plus MLflow's ``/invocations``)
as the control plane names them: a flavor uses these instead of spelling the paths."""

from __future__ import annotations

from shipyard.services.endpoints import HTTPHealthCheck, ServiceEndpoint

__all__ = [
    "READY_PATH",
    "health_check_url",
    "infer_url",
    "invocations_url",
    "served_name",
]

#: Readiness of every model: a health check, a pod's readiness probe.
READY_PATH = "/v2/health/ready"


def served_name(model_name: str) -> str:
    """The name a server serves a deployment's model under (in its URLs): the config's
    ``model_name``, else ``model``."""
    return model_name or "model"


def infer_url(base: str | None, model: str) -> str | None:
    """Where ``model`` on the server at ``base`` takes V2 requests (None: no address)."""
    return None if base is None else f"{base}/v2/models/{model}/infer"


def invocations_url(base: str | None) -> str | None:
    """Where the server at ``base`` takes MLflow-style requests (None: no address)."""
    return None if base is None else f"{base}/invocations"


def health_check_url(endpoint: ServiceEndpoint) -> str | None:
    """The URL ``endpoint``'s HTTP health check calls (``models describe`` shows it);
    None without an address or an HTTP check."""
    check = endpoint.health_check
    if endpoint.url is None or not isinstance(check, HTTPHealthCheck):
        return None
    return f"{endpoint.url}{check.path}"

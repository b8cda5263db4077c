"""What a model-server pod runs for a custom predictor (KServe's ``shipyard`` runtime,
Seldon's custom container): ``shipyard serve`` on the model the storage initializer
downloaded, with its token and its trust decision in the environment."""

from __future__ import annotations

from typing import Any

from shipyard.deployers._kubernetes._secrets import TOKEN_KEY, secret_ref

__all__ = ["MODEL_MOUNT", "OPEN_PATHS", "serve_args", "server_env"]

#: Where KServe's and Seldon's storage initializers put the model in the pod.
MODEL_MOUNT = "/mnt/models"
#: Paths answered without the token: the kubelet's probes and Prometheus carry none.
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready", "/metrics")
#: The pod's trust decision, read by `shipyard serve` (--origin, --trust, --sha256).
ORIGIN_ENV = "SHIPYARD_MODEL_ORIGIN"
TRUSTED_ENV = "SHIPYARD_MODEL_TRUSTED"
SHA256_ENV = "SHIPYARD_MODEL_SHA256"


def serve_args(name: str, http_port: int, grpc_port: int) -> list[str]:
    """The container's args (its entry point is ``shipyard``): the model at
    ``MODEL_MOUNT`` served as ``name`` on every interface, HTTP and gRPC. The bearer token
    comes from the pod's Secret (``SHIPYARD_SERVER_AUTH_TOKEN``): without it (and without
    ``SHIPYARD_SERVER_INSECURE=true``, the explicit opt-out) the server refuses to start."""
    return [
        "serve",
        MODEL_MOUNT,
        "--name",
        name,
        "--host",
        "0.0.0.0",
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--open-paths",
        ",".join(OPEN_PATHS),
    ]


def server_env(
    *,
    secret: str,
    auth: bool,
    origin: str,
    trusted: bool,
    sha256: str | None,
) -> list[dict[str, Any]]:
    """The env of a pod running ``shipyard serve``: its token (a ``secretKeyRef``, or the
    explicit opt-out), where ``MODEL_MOUNT``'s files came from and the caller's trust
    decision, so the pod's loader applies the remote URI's rule to its local copy."""
    env: list[dict[str, Any]] = []
    if auth:
        env.append(secret_ref("SHIPYARD_SERVER_AUTH_TOKEN", secret, TOKEN_KEY))
    else:
        env.append({"name": "SHIPYARD_SERVER_INSECURE", "value": "true"})
    env.append({"name": ORIGIN_ENV, "value": origin})
    env.append({"name": TRUSTED_ENV, "value": "true" if trusted else "false"})
    if sha256:
        env.append({"name": SHA256_ENV, "value": sha256})
    return env

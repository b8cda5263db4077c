"""What a model-server pod runs for a custom predictor (KServe's ``shipyard`` runtime,
Seldon's custom container): ``shipyard serve`` on the model the storage initializer
downloaded."""

from __future__ import annotations

__all__ = ["MODEL_MOUNT", "serve_args"]

#: Where KServe's and Seldon's storage initializers put the model in the pod.
MODEL_MOUNT = "/mnt/models"


def serve_args(name: str, http_port: int, grpc_port: int) -> list[str]:
    """The container's args (its entry point is ``shipyard``): the model at
    ``MODEL_MOUNT`` served as ``name`` on every interface, HTTP and gRPC, without a token:
    in-cluster access control is the cluster's job (README, "Security"), and the
    activator and probes carry no token."""
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
        "--insecure",
    ]

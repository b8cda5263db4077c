"""The Ray Serve replica: Shipyard's own data plane behind Serve's HTTP proxy.

Every replica loads the model through the one Predictor contract, health-checks it with its
input example, and answers with Shipyard's ASGI app, so the Open Inference Protocol (V2),
``/invocations``, KServe V1 and Seldon work under the application's route prefix exactly
as on ``shipyard serve``, and the V2 gRPC service through Serve's gRPC proxy; concurrent
requests share one ``predict`` call (adaptive batching). A plain Serve deployment calls
``model.predict`` once per request.

Imported only in the deployer that builds the application and in the replicas.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve

from shipyard.deployers.ray._grpc import GrpcMethods
from shipyard.serving.config import BatchingConfig, ModelSpec
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.grpc._servicer import InferenceServicer
from shipyard.serving.http.app import HttpApp

__all__ = ["ShipyardReplica", "build_application"]

Scope = dict[str, Any]


class _StripRootPath:
    """Serve passes the full path (route prefix included) with the prefix as
    ``root_path``; Shipyard's router matches paths below the prefix."""

    def __init__(self, app: HttpApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        root = scope.get("root_path", "")
        path: str = scope.get("path", "")
        if root and path.startswith(root):
            scope = {**scope, "path": path[len(root) :] or "/", "root_path": ""}
        await self.app(scope, receive, send)


@serve.ingress()
class ShipyardReplica(GrpcMethods):
    """One replica: the model loaded and checked before Serve routes a request here.
    HTTP comes through the ASGI app; gRPC, when Serve's gRPC proxy carries the Open
    Inference Protocol, through ``GrpcMethods``."""

    # Serve awaits an async constructor; the model loads off the replica's event loop.
    async def __init__(  # type: ignore[misc]
        self, model_uri: str, model_name: str, batching: dict[str, Any]
    ) -> None:
        self.dataplane = DataPlane()
        spec = ModelSpec(uri=model_uri, name=model_name)
        entry = await asyncio.to_thread(
            self.dataplane.load_model, spec, BatchingConfig.model_validate(batching)
        )
        # A model that cannot answer its own input example fails here: Serve then keeps
        # the previous replicas serving (surge rollout) and reports DEPLOY_FAILED.
        await self.dataplane.check(entry)
        self.dataplane.add(entry)
        self.grpc_servicer = InferenceServicer(self.dataplane)

    def __serve_build_asgi_app__(self) -> _StripRootPath:
        return _StripRootPath(HttpApp(self.dataplane))

    async def check_health(self) -> None:
        if not self.dataplane.ready():
            raise RuntimeError("the model is not ready")


def build_application(
    *,
    model_uri: str,
    model_name: str,
    batching: dict[str, Any],
    options: dict[str, Any],
) -> Any:
    """The Serve application (one deployment) serving ``model_uri`` as ``model_name``."""
    deployment = serve.deployment(name="shipyard", **options)(ShipyardReplica)
    return deployment.bind(model_uri, model_name, batching)

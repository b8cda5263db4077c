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

from shipyard._ray.secrets import resolve_on_cluster
from shipyard.deployers.ray._grpc import GrpcMethods
from shipyard.errors import ShipyardError
from shipyard.secrets import reference
from shipyard.serving.auth import AuthApp, BearerAuth
from shipyard.serving.config import BatchingConfig, ModelSpec
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.grpc._servicer import InferenceServicer
from shipyard.serving.http.app import HttpApp

__all__ = ["TOKEN_SECRET", "ShipyardReplica", "build_application"]

#: The name the service's bearer token is handed to the replicas under
#: (``shipyard._ray.secrets``).
TOKEN_SECRET = "service-token"

Scope = dict[str, Any]


class _StripRootPath:
    """Serve passes the full path (route prefix included) with the prefix as
    ``root_path``; Shipyard's router matches paths below the prefix."""

    def __init__(self, app: HttpApp | AuthApp) -> None:
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
        self,
        model_uri: str,
        model_name: str,
        batching: dict[str, Any],
        trust: dict[str, Any] | None = None,
        secrets_scope: str | None = None,
        auth: bool = False,
    ) -> None:
        # Credentials and the token come from the cluster's secrets
        # (``shipyard._ray.secrets``), never from the arguments, which Ray keeps and shows.
        uri = resolve_on_cluster(model_uri, secrets_scope)
        token = resolve_on_cluster(reference(TOKEN_SECRET), secrets_scope) if auth else None
        self.auth = BearerAuth(token) if token else None
        self.dataplane = DataPlane()
        # Trust is checked where the model loads (``models._trust``), with the caller's.
        spec = ModelSpec(uri=uri, name=model_name, **(trust or {}))
        try:
            entry = await asyncio.to_thread(
                self.dataplane.load_model, spec, BatchingConfig.model_validate(batching)
            )
        except ShipyardError as err:
            # Serve shows the constructor's error, chained causes included, in its status:
            # ours masks credentials; a cause (a fetch library's) might not.
            raise err from None
        except Exception as err:
            from shipyard._redact import mask_credentials

            raise RuntimeError(mask_credentials(f"{type(err).__name__}: {err}")) from None
        # A model that cannot answer its own input example fails here: Serve then keeps
        # the previous replicas serving (surge rollout) and reports DEPLOY_FAILED.
        await self.dataplane.check(entry)
        self.dataplane.add(entry)
        self.grpc_servicer = InferenceServicer(self.dataplane)

    def __serve_build_asgi_app__(self) -> _StripRootPath:
        app = HttpApp(self.dataplane)
        # The prefix is stripped first, so the open paths (health) match as on `serve`.
        return _StripRootPath(app if self.auth is None else AuthApp(app, self.auth))

    async def check_health(self) -> None:
        if not self.dataplane.ready():
            raise RuntimeError("the model is not ready")


def build_application(
    *,
    model_uri: str,
    model_name: str,
    batching: dict[str, Any],
    options: dict[str, Any],
    trust: dict[str, Any] | None = None,
    secrets_scope: str | None = None,
    auth: bool = False,
) -> Any:
    """The Serve application (one deployment) serving ``model_uri`` as ``model_name``.
    ``model_uri`` holds references, not credentials; their values (and the token, with
    ``auth``) were put under ``secrets_scope`` on the cluster (``shipyard._ray.secrets``)."""
    deployment = serve.deployment(name="shipyard", **options)(ShipyardReplica)
    return deployment.bind(model_uri, model_name, batching, trust, secrets_scope, auth)

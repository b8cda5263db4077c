"""A custom model-deployer flavor, as the docs' "Custom Implementation" describes it:
a ModelDeployer subclass, its config, and its service class. It serves models with a
tiny standard-library HTTP server, to show the base classes carry a non-Shipyard server.
"""

from __future__ import annotations

import sys
from typing import Any, cast

import httpx
from pydantic import Field

from shipyard.deployers import ModelDeployer
from shipyard.services import (
    HTTPHealthCheck,
    LocalDaemonService,
    Service,
    ServiceConfig,
    ServiceEndpoint,
)
from shipyard.stack import ComponentConfig

SERVER = r"""
import http.server, json, sys
import numpy as np
import shipyard

model = shipyard.load_model(sys.argv[1])
greeting = sys.argv[3]

class Handler(http.server.BaseHTTPRequestHandler):
    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(200 if self.path == "/health" else 404, {"greeting": greeting})

    def do_POST(self):
        rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["rows"]
        predictions = model.predict(np.asarray(rows, dtype=np.float64))
        self._send(200, {"predictions": np.asarray(predictions).tolist()})

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
"""


class TinyServerConfig(ServiceConfig):
    greeting: str = Field(default="hi", description="Returned by the health endpoint.")


def _endpoint(host: str = "127.0.0.1") -> ServiceEndpoint:
    return ServiceEndpoint(host=host, health_check=HTTPHealthCheck(path="/health"))


class TinyServer(LocalDaemonService):
    config: TinyServerConfig = Field(default_factory=TinyServerConfig)
    endpoint: ServiceEndpoint = Field(default_factory=_endpoint)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-c",
            SERVER,
            self.config.model_uri,
            str(self.endpoint.port),
            self.config.greeting,
        ]

    @property
    def prediction_url(self) -> str | None:
        return None if self.endpoint.url is None else f"{self.endpoint.url}/predict"

    def predict(self, data: Any) -> Any:
        rows = data.tolist() if hasattr(data, "tolist") else data
        response = httpx.post(str(self.prediction_url), json={"rows": rows}, timeout=30)
        response.raise_for_status()
        return response.json()["predictions"]


class TinyDeployerConfig(ComponentConfig):
    host: str = Field(default="127.0.0.1", description="Interface to bind.")


class TinyDeployer(ModelDeployer):
    """Serves models with a tiny standard-library HTTP server."""

    FLAVOR_NAME = "tiny"
    CONFIG_CLASS = TinyDeployerConfig
    DEPLOYMENT_CONFIG = TinyServerConfig
    SERVICE_CLASS = TinyServer

    def perform_deploy_model(self, config: ServiceConfig, timeout: float) -> Service:
        host = cast(TinyDeployerConfig, self.config).host
        service = TinyServer(
            flavor=self.flavor, config=cast(TinyServerConfig, config), endpoint=_endpoint(host)
        )
        self.register_service(service)
        service.start(timeout=timeout)
        return service

    def perform_update_model(
        self, service: Service, config: ServiceConfig, timeout: float
    ) -> Service:
        # No hot reload in this server: restart it on the same port.
        service.stop(timeout=timeout)
        service.config = config
        service.start(timeout=timeout)
        return service

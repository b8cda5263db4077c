"""Where a service listens and how to tell it is healthy: HTTP or TCP checks."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HTTPHealthCheck", "HealthCheck", "ServiceEndpoint", "TCPHealthCheck"]


class HTTPHealthCheck(BaseModel):
    """Healthy when ``GET http://host:port{path}`` answers 200."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["http"] = "http"
    path: str = "/"
    timeout: float = Field(default=2.0, description="Seconds to wait for the answer.")
    token_file: str = Field(
        default="", description="File with the bearer token to send; '' sends none."
    )

    def check(self, host: str, port: int) -> tuple[bool, str]:
        import httpx

        url = f"http://{host}:{port}{self.path}"
        headers = {}
        if self.token_file:
            # A health path is open by default; the token is sent anyway, so a server
            # started with no open paths (--open-paths '') is still checked.
            try:
                headers["authorization"] = f"Bearer {Path(self.token_file).read_text().strip()}"
            except OSError as err:
                return False, f"cannot read the token file {self.token_file}: {err}"
        try:
            response = httpx.get(url, timeout=self.timeout, headers=headers)
        except httpx.HTTPError as err:
            return False, f"GET {url} failed: {err or type(err).__name__}"
        if response.status_code != 200:
            return False, f"GET {url} answered {response.status_code}: {response.text[:200]}"
        return True, ""


class TCPHealthCheck(BaseModel):
    """Healthy when a TCP connection to host:port opens."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["tcp"] = "tcp"
    timeout: float = 2.0

    def check(self, host: str, port: int) -> tuple[bool, str]:
        try:
            with socket.create_connection((host, port), timeout=self.timeout):
                return True, ""
        except OSError as err:
            return False, f"TCP connection to {host}:{port} failed: {err}"


HealthCheck = HTTPHealthCheck | TCPHealthCheck


class ServiceEndpoint(BaseModel):
    """The address of a service; ``port`` is chosen on first start and then kept."""

    model_config = ConfigDict(extra="forbid")

    protocol: Literal["http", "tcp"] = "http"
    host: str = "127.0.0.1"
    port: int | None = None
    health_check: HealthCheck = Field(default_factory=TCPHealthCheck, discriminator="kind")

    @property
    def url(self) -> str | None:
        if self.port is None:
            return None
        return f"{self.protocol}://{self.host}:{self.port}"

    def check(self) -> tuple[bool, str]:
        """(healthy, why not) — performs the network check."""
        if self.port is None:
            return False, "no port assigned yet"
        return self.health_check.check(self.host, self.port)

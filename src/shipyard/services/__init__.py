"""Services: model servers as objects with a lifecycle, endpoints and health checks."""

from shipyard.services.endpoints import (
    HealthCheck,
    HTTPHealthCheck,
    ServiceEndpoint,
    TCPHealthCheck,
)
from shipyard.services.local_daemon import LocalDaemonService
from shipyard.services.service import Service, ServiceConfig, ServiceStatus
from shipyard.services.state import ServiceState

#: The name the model-deployer docs use for the base class.
BaseService = Service

__all__ = [
    "BaseService",
    "HTTPHealthCheck",
    "HealthCheck",
    "LocalDaemonService",
    "Service",
    "ServiceConfig",
    "ServiceEndpoint",
    "ServiceState",
    "ServiceStatus",
    "TCPHealthCheck",
]

"""The control plane's public names: changing them is a decision, not an accident."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "shipyard.store": [
        "ComponentRecord",
        "FlavorSourceRecord",
        "ServiceRecord",
        "StackRecord",
        "Store",
    ],
    "shipyard.stack": [
        "Client",
        "ComponentConfig",
        "ComponentType",
        "ENTRY_POINT_GROUP",
        "Flavor",
        "FlavorRegistry",
        "Stack",
        "StackComponent",
        "config_for_storage",
        "get_active_stack",
        "import_object",
        "register_component",
        "register_stack",
        "update_component",
    ],
    "shipyard.services": [
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
    ],
    "shipyard.deployers": ["BaseModelDeployer", "ModelDeployer"],
    # Small on purpose: other layers (a server's auth token) read secrets through it.
    "shipyard.secrets": [
        "SecretInfo",
        "SecretStore",
        "check_name",
        "get_secret",
        "has_references",
        "reference",
        "reference_form",
        "resolve_references",
        "split_credentials",
    ],
    "shipyard.deployers.local": [
        "LocalDeploymentConfig",
        "LocalModelDeployer",
        "LocalModelDeployerConfig",
        "LocalModelServer",
        "LocalModelServerConfig",
    ],
}

#: The model-deployer API under the names the docs use.
DOCS_METHODS = [
    "get_active_model_deployer",
    "deploy_model",
    "find_model_server",
    "start_model_server",
    "stop_model_server",
    "delete_model_server",
    "delete_service",
    "get_model_server_logs",
    "get_model_server_info",
]
SERVICE_MEMBERS = [
    "uuid",
    "config",
    "status",
    "is_running",
    "is_failed",
    "is_stopped",
    "prediction_url",
    "start",
    "stop",
    "check_status",
    "predict",
    "get_logs",
]


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_importable(module: str) -> None:
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(PUBLIC[module])
    for name in imported.__all__:
        assert getattr(imported, name) is not None


def test_the_docs_names_exist() -> None:
    from shipyard.deployers import ModelDeployer
    from shipyard.deployers.local import LocalModelServer
    from shipyard.services import ServiceState

    for name in DOCS_METHODS:
        assert callable(getattr(ModelDeployer, name)), name
    for name in SERVICE_MEMBERS:
        assert name in LocalModelServer.model_fields or hasattr(LocalModelServer, name), name
    assert [s.value for s in ServiceState] == [
        "inactive",
        "pending_startup",
        "active",
        "pending_shutdown",
        "error",
    ]

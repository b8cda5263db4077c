"""An artifact-store flavor with a secret in its config, for the masking tests."""

from __future__ import annotations

from pydantic import SecretStr

from shipyard.stack import ComponentConfig, ComponentType, StackComponent


class VaultConfig(ComponentConfig):
    url: str = "s3://bucket"
    token: SecretStr


class VaultStore(StackComponent):
    """Artifacts behind a token."""

    TYPE = ComponentType.ARTIFACT_STORE
    FLAVOR_NAME = "vault"
    CONFIG_CLASS = VaultConfig

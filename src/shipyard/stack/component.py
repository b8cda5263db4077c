"""Stack components: the base class, its config base, and the component types."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["ComponentConfig", "ComponentType", "StackComponent", "config_for_storage"]


class ComponentType(enum.StrEnum):
    """The kinds of component a stack holds, one of each at most."""

    ARTIFACT_STORE = "artifact_store"
    ORCHESTRATOR = "orchestrator"
    MODEL_DEPLOYER = "model_deployer"

    @property
    def label(self) -> str:
        """Human name: 'model deployer'."""
        return self.value.replace("_", " ")

    @property
    def cli_name(self) -> str:
        """CLI group name: 'model-deployer'."""
        return self.value.replace("_", "-")


class ComponentConfig(BaseModel):
    """Base of every flavor's configuration: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def config_for_storage(config: BaseModel) -> dict[str, Any]:
    """The config as JSON-able data, secrets included (only the store sees them)."""
    data: dict[str, Any] = config.model_dump(mode="json")
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
    return data


class StackComponent:
    """A named, configured instance of a flavor; subclasses are a flavor's implementation.

    A subclass may carry its own flavor description (``TYPE``, ``FLAVOR_NAME``,
    ``CONFIG_CLASS``), so that ``--source module:Class`` can register it directly.
    """

    TYPE: ClassVar[ComponentType]
    FLAVOR_NAME: ClassVar[str] = ""
    CONFIG_CLASS: ClassVar[type[ComponentConfig]] = ComponentConfig

    def __init__(
        self,
        *,
        name: str,
        id: str,
        flavor: str,
        config: ComponentConfig,
        store: Store,
    ) -> None:
        self.name = name
        self.id = id
        self.flavor = flavor
        self.config = config
        self.store = store

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, flavor={self.flavor!r})"

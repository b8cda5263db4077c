"""A flavor is a cheap descriptor: name, component type, config class, implementation.

The config and implementation classes may be given as ``"module:attribute"`` strings and
are imported only when used, so listing flavors imports no implementation.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from shipyard._imports import import_object
from shipyard._validation import describe_validation_error
from shipyard.errors import ConfigError, StackError
from shipyard.stack.component import ComponentConfig, ComponentType, StackComponent

__all__ = ["Flavor", "describe_validation_errors", "import_object"]


def describe_validation_errors(config_class: type[BaseModel], err: ValidationError) -> str:
    """Each problem of ``err`` on one line's worth of text: the key and what is allowed."""
    return describe_validation_error(err, allowed=config_class.model_fields)


def _describe_errors(flavor: Flavor, config_class: type[BaseModel], err: ValidationError) -> str:
    return (
        f"Invalid configuration for the {flavor.type.label} flavor '{flavor.name}': "
        + describe_validation_errors(config_class, err)
    )


@dataclass(frozen=True)
class Flavor:
    """Describes one implementation of a component type."""

    name: str
    type: ComponentType
    config_class: builtins.type[ComponentConfig] | str
    implementation: builtins.type[StackComponent] | str
    description: str = ""
    #: Where it came from: "builtin", "entry point <dist>", or "source module:attr".
    origin: str = "builtin"

    def load_config_class(self) -> builtins.type[ComponentConfig]:
        if isinstance(self.config_class, str):
            loaded = import_object(self.config_class)
            if not (isinstance(loaded, type) and issubclass(loaded, BaseModel)):
                raise StackError(f"'{self.config_class}' is not a pydantic model class.")
            return cast(builtins.type[ComponentConfig], loaded)
        return self.config_class

    def load_implementation(self) -> builtins.type[StackComponent]:
        if isinstance(self.implementation, str):
            loaded = import_object(self.implementation)
            if not (isinstance(loaded, type) and issubclass(loaded, StackComponent)):
                raise StackError(f"'{self.implementation}' is not a StackComponent class.")
            return loaded
        return self.implementation

    def validate_config(self, values: Mapping[str, Any]) -> ComponentConfig:
        """Validate ``values``; errors name each key and what is allowed."""
        config_class = self.load_config_class()
        try:
            return config_class.model_validate(dict(values))
        except ValidationError as err:
            raise ConfigError(_describe_errors(self, config_class, err)) from err

    @classmethod
    def from_object(cls, obj: Any, origin: str) -> Flavor:
        """A flavor from what an entry point or ``--source`` names.

        Accepted: a Flavor, a zero-argument callable returning one (a Flavor subclass
        with defaults, a factory function), or a StackComponent subclass that carries
        ``TYPE``, ``FLAVOR_NAME`` and ``CONFIG_CLASS``.
        """
        if isinstance(obj, type) and issubclass(obj, StackComponent):
            if not obj.FLAVOR_NAME or not hasattr(obj, "TYPE"):
                raise StackError(
                    f"{obj.__qualname__} does not describe a flavor: give it the class "
                    "attributes TYPE, FLAVOR_NAME and CONFIG_CLASS."
                )
            return cls(
                name=obj.FLAVOR_NAME,
                type=obj.TYPE,
                config_class=obj.CONFIG_CLASS,
                implementation=obj,
                description=(obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else "",
                origin=origin,
            )
        if callable(obj) and not isinstance(obj, Flavor):
            obj = obj()
        if not isinstance(obj, Flavor):
            raise StackError(
                f"{origin} does not give a shipyard Flavor (got {type(obj).__name__})."
            )
        return Flavor(
            name=obj.name,
            type=ComponentType(obj.type),
            config_class=obj.config_class,
            implementation=obj.implementation,
            description=obj.description,
            origin=origin,
        )

"""Stacks, stack components and flavors."""

from shipyard.stack.component import (
    ComponentConfig,
    ComponentType,
    StackComponent,
    config_for_storage,
)
from shipyard.stack.flavor import Flavor, import_object
from shipyard.stack.manage import register_component, register_stack, update_component
from shipyard.stack.registry import ENTRY_POINT_GROUP, FlavorRegistry
from shipyard.stack.stack import Client, Stack, get_active_stack

__all__ = [
    "ENTRY_POINT_GROUP",
    "Client",
    "ComponentConfig",
    "ComponentType",
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
]

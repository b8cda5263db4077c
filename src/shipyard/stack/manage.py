"""Operations behind the component and stack commands, usable from Python too."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from shipyard.errors import StackError
from shipyard.stack.component import ComponentType, config_for_storage
from shipyard.stack.registry import FlavorRegistry

if TYPE_CHECKING:
    from shipyard.store import ComponentRecord, StackRecord, Store

__all__ = ["register_component", "register_stack", "update_component"]


def register_component(
    store: Store,
    registry: FlavorRegistry,
    type: ComponentType,
    name: str,
    flavor: str,
    values: Mapping[str, Any],
) -> ComponentRecord:
    """Validate ``values`` against the flavor's config and store a new component."""
    config = registry.get(type, flavor).validate_config(values)
    return store.create_component(name, type.value, flavor, _stored(store, type, name, config))


def update_component(
    store: Store,
    registry: FlavorRegistry,
    type: ComponentType,
    name: str,
    values: Mapping[str, Any],
) -> ComponentRecord:
    """Merge ``values`` into the component's config; the result is validated as a whole."""
    record = store.get_component(name, type.value)
    if record is None:
        raise StackError(f"No {type.label} named '{name}'. See `shipyard {type.cli_name} list`.")
    merged = {**record.configuration, **values}
    config = registry.get(type, record.flavor).validate_config(merged)
    return store.update_component(name, type.value, _stored(store, type, name, config))


def _stored(store: Store, type: ComponentType, name: str, config: BaseModel) -> dict[str, Any]:
    """The config as the store keeps it: each ``SecretStr`` field's value moves into the
    secrets store (``<type>.<component>.<field>``) and the config keeps a reference; so do
    the credentials of a URL in any text field (``--tracking-uri http://bob:pw@host``)."""
    from shipyard.secrets import SecretStore, has_references, reference, split_credentials

    data = config_for_storage(config)
    for field, value in list(data.items()):
        if isinstance(value, str) and not isinstance(getattr(config, field, None), SecretStr):
            data[field], found = split_credentials(value)
            for secret_name, secret in found.items():
                SecretStore(store).set(secret_name, secret)
            continue
        if not isinstance(getattr(config, field, None), SecretStr) or not value:
            continue
        if isinstance(value, str) and has_references(value):
            continue  # already a reference, e.g. token={{secret.api-token}}
        secret = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{type.value}.{name}.{field}")[:128]
        SecretStore(store).set(secret, str(value))
        data[field] = reference(secret)
    return data


def register_stack(
    store: Store,
    name: str,
    components: Mapping[ComponentType, str | None],
    *,
    activate: bool = False,
) -> StackRecord:
    """Create a stack from component names (one per type; None leaves the type out)."""
    ids: dict[str, str] = {}
    for type_, component_name in components.items():
        if component_name is None:
            continue
        record = store.get_component(component_name, type_.value)
        if record is None:
            raise StackError(
                f"No {type_.label} named '{component_name}'. Register it first: "
                f"`shipyard {type_.cli_name} register {component_name} --flavor=local`."
            )
        ids[type_.value] = record.id
    stack = store.create_stack(name, ids)
    if activate:
        store.set_active_stack(name)
    return stack

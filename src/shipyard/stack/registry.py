"""Where flavors come from: built-ins, the ``shipyard.flavors`` entry points, ``--source``.

Built when asked for, never at import; pass it around like the store.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from shipyard.errors import StackError
from shipyard.stack._builtin import builtin_flavors
from shipyard.stack.component import ComponentConfig, ComponentType, StackComponent
from shipyard.stack.flavor import Flavor, import_object

if TYPE_CHECKING:
    from shipyard.store import ComponentRecord, Store

__all__ = ["ENTRY_POINT_GROUP", "FlavorRegistry"]

ENTRY_POINT_GROUP = "shipyard.flavors"


def _entry_point_flavors() -> tuple[list[Flavor], list[str]]:
    found: list[Flavor] = []
    broken: list[str] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point '{point.name}' ({point.value})"
        try:
            loaded: Any = point.load()
            items = loaded if isinstance(loaded, list | tuple) else [loaded]
            found.extend(Flavor.from_object(item, origin) for item in items)
        except Exception as err:  # a broken plug-in must not break the others
            broken.append(f"{origin}: {err}")
    return found, broken


class FlavorRegistry:
    """All flavors known to one store: later sources override earlier ones by name."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._flavors: dict[tuple[ComponentType, str], Flavor] | None = None
        self._broken: list[str] = []

    def _load(self) -> dict[tuple[ComponentType, str], Flavor]:
        if self._flavors is not None:
            return self._flavors
        flavors = {(f.type, f.name): f for f in builtin_flavors()}
        from_entry_points, self._broken = _entry_point_flavors()
        flavors.update({(f.type, f.name): f for f in from_entry_points})
        if self._store is not None:
            for record in self._store.list_flavor_sources():
                try:
                    flavor = Flavor.from_object(
                        import_object(record.source), f"source '{record.source}'"
                    )
                except StackError as err:
                    self._broken.append(f"source '{record.source}': {err}")
                    continue
                flavors[(flavor.type, flavor.name)] = flavor
        self._flavors = flavors
        return flavors

    def list(self, type: ComponentType | None = None) -> list[Flavor]:
        flavors = self._load().values()
        chosen = [f for f in flavors if type is None or f.type == type]
        return sorted(chosen, key=lambda f: (f.type.value, f.name))

    def get(self, type: ComponentType, name: str) -> Flavor:
        flavor = self._load().get((type, name))
        if flavor is None:
            known = ", ".join(f.name for f in self.list(type)) or "(none)"
            hint = (
                f" Plug-ins that failed to load: {'; '.join(self._broken)}." if self._broken else ""
            )
            raise StackError(
                f"No {type.label} flavor named '{name}'; available: {known}. "
                f"Register a custom one with `shipyard {type.cli_name} flavor register "
                f"module:Class`.{hint}"
            )
        return flavor

    def register_source(self, source: str, type: ComponentType | None = None) -> Flavor:
        """Import ``source``, check it is a flavor (of ``type``) and remember it in the store."""
        flavor = Flavor.from_object(import_object(source), f"source '{source}'")
        if type is not None and flavor.type != type:
            raise StackError(
                f"'{source}' is a {flavor.type.label} flavor, not a {type.label} flavor."
            )
        flavor.load_config_class()
        flavor.load_implementation()
        if self._store is not None:
            self._store.add_flavor_source(flavor.name, flavor.type.value, source)
        if self._flavors is not None:
            self._flavors[(flavor.type, flavor.name)] = flavor
        return flavor

    def instantiate(self, record: ComponentRecord, store: Store) -> StackComponent:
        """The live component of a stored record."""
        type_ = ComponentType(record.type)
        flavor = self.get(type_, record.flavor)
        config: ComponentConfig = flavor.validate_config(_resolved(record.configuration, store))
        implementation = flavor.load_implementation()
        return implementation(
            name=record.name, id=record.id, flavor=record.flavor, config=config, store=store
        )


def _resolved(value: Any, store: Store) -> Any:
    """``value`` with ``{{secret.NAME}}`` references replaced by the secrets' values: only
    for the live component, never in what is stored or shown."""
    from shipyard.secrets import SecretStore, has_references

    if isinstance(value, str):
        return SecretStore(store).resolve(value) if has_references(value) else value
    if isinstance(value, dict):
        return {key: _resolved(item, store) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, store) for item in value]
    return value

"""A stack: one component per type; one stack is active."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from shipyard.errors import StackError
from shipyard.stack.component import ComponentType, StackComponent
from shipyard.stack.registry import FlavorRegistry

if TYPE_CHECKING:
    from shipyard.deployers.base import ModelDeployer
    from shipyard.store import StackRecord, Store

__all__ = ["Client", "Stack", "get_active_stack"]


class Stack:
    """A stored stack with its components instantiated on first use."""

    def __init__(self, record: StackRecord, store: Store, registry: FlavorRegistry) -> None:
        self.record = record
        self.store = store
        self.registry = registry
        self._components: dict[ComponentType, StackComponent] = {}

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def id(self) -> str:
        return self.record.id

    def component(self, type: ComponentType) -> StackComponent | None:
        """The live component of ``type``, or None when the stack has none."""
        if type not in self._components:
            record = self.record.components.get(type.value)
            if record is None:
                return None
            self._components[type] = self.registry.instantiate(record, self.store)
        return self._components[type]

    @property
    def model_deployer(self) -> ModelDeployer | None:
        """The stack's model deployer, or None when it has none.

        The deployers layer sits above this one, so the class is not imported here (that
        was an import cycle): a component is a model deployer when its class says so
        (``TYPE``) and it can deploy.
        """
        component = self.component(ComponentType.MODEL_DEPLOYER)
        if component is None:
            return None
        if component.TYPE is not ComponentType.MODEL_DEPLOYER or not callable(
            getattr(component, "deploy_model", None)
        ):
            raise StackError(
                f"The model deployer '{component.name}' of stack '{self.name}' is a "
                f"{type(component).__name__}, not a ModelDeployer; fix its flavor."
            )
        return cast("ModelDeployer", component)

    @property
    def artifact_store(self) -> StackComponent | None:
        return self.component(ComponentType.ARTIFACT_STORE)

    @property
    def orchestrator(self) -> StackComponent | None:
        return self.component(ComponentType.ORCHESTRATOR)

    def __repr__(self) -> str:
        return f"Stack(name={self.name!r})"


def get_active_stack(store: Store, registry: FlavorRegistry | None = None) -> Stack:
    """The active stack of ``store``."""
    name = store.get_active_stack_name()
    record = None if name is None else store.get_stack(name)
    if record is None:
        raise StackError(
            "No stack is active. Activate one with `shipyard stack set NAME` "
            "(see `shipyard stack list`)."
        )
    return Stack(record, store, registry or FlavorRegistry(store))


class Client:
    """Entry point for scripts and steps: ``Client().active_stack.model_deployer``.

    Opens the store from the environment (``SHIPYARD_HOME``, ``SHIPYARD_STORE_URL``)
    unless one is passed in.
    """

    def __init__(self, store: Store | None = None) -> None:
        if store is None:
            from shipyard.store import Store

            store = Store.open()
        self.store = store
        self.registry = FlavorRegistry(store)

    @property
    def active_stack(self) -> Stack:
        return get_active_stack(self.store, self.registry)

    def get_stack(self, name: str) -> Stack:
        record = self.store.get_stack(name)
        if record is None:
            raise StackError(f"No stack named '{name}'. See `shipyard stack list`.")
        return Stack(record, self.store, self.registry)

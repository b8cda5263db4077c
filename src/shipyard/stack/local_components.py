"""The local artifact store and orchestrator of the default stack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from pydantic import Field

from shipyard.stack.component import ComponentConfig, ComponentType, StackComponent

__all__ = [
    "LocalArtifactStore",
    "LocalArtifactStoreConfig",
    "LocalOrchestrator",
    "LocalOrchestratorConfig",
]


class LocalArtifactStoreConfig(ComponentConfig):
    path: str | None = Field(
        default=None, description="Root directory; default $SHIPYARD_HOME/artifacts."
    )


class LocalArtifactStore(StackComponent):
    """Artifacts as files under one local directory."""

    TYPE = ComponentType.ARTIFACT_STORE
    FLAVOR_NAME = "local"
    CONFIG_CLASS = LocalArtifactStoreConfig

    @property
    def path(self) -> Path:
        config = cast(LocalArtifactStoreConfig, self.config)
        if config.path:
            return Path(config.path).expanduser()
        return self.store.settings.artifacts_dir

    def uri(self, *parts: str) -> str:
        """Where an artifact lives (the directory is created)."""
        target = self.path.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        return str(target)


class LocalOrchestratorConfig(ComponentConfig):
    pass


class LocalOrchestrator(StackComponent):
    """Runs steps in order, in this process."""

    TYPE = ComponentType.ORCHESTRATOR
    FLAVOR_NAME = "local"
    CONFIG_CLASS = LocalOrchestratorConfig

    def run(self, steps: list[Callable[[], Any]]) -> list[Any]:
        return [step() for step in steps]

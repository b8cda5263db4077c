"""The local artifact store of the default stack (its orchestrator is
``shipyard.pipelines._orchestrator.LocalOrchestrator``, which runs the pipelines)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from pydantic import Field

from shipyard.stack.component import ComponentConfig, ComponentType, StackComponent

__all__ = [
    "LocalArtifactStore",
    "LocalArtifactStoreConfig",
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

"""Global settings: where Shipyard keeps its state.

Read from the environment (``SHIPYARD_HOME``, ``SHIPYARD_STORE_URL``) each time they are
asked for, never cached at import, so tests and tools can point one process at several
homes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Where the store, the service run directories and local artifacts live."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="forbid")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".shipyard",
        description="Directory holding the SQLite store, service run dirs and artifacts.",
    )
    store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store (e.g. postgresql+psycopg://...); "
        "default: SQLite at $SHIPYARD_HOME/store.db.",
    )

    trusted_model_uris: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="URI prefixes whose pickle/joblib/cloudpickle models may load without "
        "--trust (comma-separated or a JSON list): e.g. s3://my-team-bucket/models/.",
    )
    trusted_types: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Types skops files may load beyond skops' safe defaults (comma-separated "
        "or a JSON list); a model's own shipyard.yaml never adds any.",
    )

    @field_validator("trusted_model_uris", "trusted_types", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def database_url(self) -> str:
        """The store URL actually used."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{self.home.expanduser() / 'store.db'}"

    @property
    def services_dir(self) -> Path:
        """Parent of every local service's run directory."""
        return self.home.expanduser() / "services"

    @property
    def artifacts_dir(self) -> Path:
        """Default path of the local artifact store."""
        return self.home.expanduser() / "artifacts"


def get_settings() -> Settings:
    """Settings from the current environment."""
    return Settings()

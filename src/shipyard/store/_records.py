"""Plain records the store hands out: what is stored, without behaviour."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ComponentRecord", "FlavorSourceRecord", "ServiceRecord", "StackRecord"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlavorSourceRecord(_Record):
    """A custom flavor registered by ``--source module:attribute``."""

    name: str
    type: str
    source: str


class ComponentRecord(_Record):
    """A named, configured instance of a flavor."""

    id: str
    name: str
    type: str
    flavor: str
    configuration: dict[str, Any] = Field(default_factory=dict)
    created: datetime | None = None
    updated: datetime | None = None


class StackRecord(_Record):
    """A named set of components, at most one per component type."""

    id: str
    name: str
    components: dict[str, ComponentRecord] = Field(default_factory=dict)
    created: datetime | None = None
    updated: datetime | None = None


class ServiceRecord(_Record):
    """A model server in the registry; ``body`` is the Service's own JSON."""

    uuid: str
    flavor: str
    service_type: str
    body: str
    deployer_id: str | None = None
    pipeline_name: str = ""
    pipeline_step_name: str = ""
    pipeline_run_id: str = ""
    model_name: str = ""
    model_uri: str = ""
    created: datetime | None = None
    updated: datetime | None = None

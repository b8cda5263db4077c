"""Services through the artifact store: ``service.json`` out, the live Service back in."""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar

import fsspec
from pydantic import BaseModel

__all__ = ["ServiceMaterializer"]


class ServiceMaterializer:
    """A model server (Service): saved as ``service.json``, loaded as the live Service."""

    name: ClassVar[str] = "service"

    def can_save(self, value: Any) -> bool:
        if not isinstance(value, BaseModel):
            # Services are pydantic models; anything else skips the services import.
            return False
        from shipyard.services import Service

        return isinstance(value, Service)

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        with fsspec.open(posixpath.join(uri, "service.json"), "w") as handle:
            handle.write(value.model_dump_json())
        return {"uuid": str(value.uuid), "prediction_url": value.prediction_url}

    def load(self, uri: str) -> Any:  # pragma: no cover - filled in when services land
        raise NotImplementedError

"""Shipyard: deploy trained models as fast HTTP/gRPC servers and run batch inference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "pipeline", "save_model", "step"]

if TYPE_CHECKING:
    from shipyard.models import load_model, save_model
    from shipyard.pipelines import pipeline, step


def __getattr__(name: str) -> Any:
    # Lazy, so `import shipyard` stays fast for the CLI and model-server start-up.
    if name in ("save_model", "load_model"):
        from shipyard import models

        return getattr(models, name)
    if name in ("pipeline", "step"):  # ZenML's spelling: `from shipyard import pipeline, step`
        from shipyard import pipelines

        return getattr(pipelines, name)
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")

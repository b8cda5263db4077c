"""The model server's data plane: ``Predictor`` (the contract) and ``DataPlane`` (the one
inference path). Imported lazily so ``python -m shipyard.serving`` starts fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DataPlane", "Predictor"]

if TYPE_CHECKING:
    from shipyard.models.predictor import Predictor
    from shipyard.serving.dataplane import DataPlane


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from shipyard.models.predictor import Predictor

        return Predictor
    if name == "DataPlane":
        from shipyard.serving.dataplane import DataPlane

        return DataPlane
    raise AttributeError(f"module 'shipyard.serving' has no attribute {name!r}")

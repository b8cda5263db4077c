"""XGBoost Boosters in XGBoost's own formats (.json, .ubj, .bst)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shipyard.errors import InvalidInputError
from shipyard.models._signature import is_dataframe
from shipyard.models.runtimes._base import FileRuntime, require, rows, save_booster

__all__ = ["XGBoostPredictor", "save"]

_PURPOSE = "XGBoost models"


def save(model: Any, model_dir: Path) -> str:
    """Write a Booster as ``model.json`` (portable across XGBoost versions)."""
    return save_booster(model, model_dir, "model.json")


class XGBoostPredictor(FileRuntime):
    """Predicts with ``Booster.inplace_predict``: no DMatrix copy, and safe across threads."""

    supports_batching: ClassVar[bool] = True
    default_files = ("model.json", "model.ubj", "model.bst")

    def load(self, model_dir: Path) -> None:
        super().load(model_dir)
        xgb = require("xgboost", package="xgboost", extra="xgboost", purpose=_PURPOSE)
        self.booster = xgb.Booster()
        self.booster.load_model(str(self.model_path()))
        names = self.booster.feature_names
        self.feature_names: list[str] | None = list(names) if names else None

    def predict(self, inputs: Any) -> Any:
        x = rows(inputs, "XGBoost model")
        if (
            not is_dataframe(x)
            and self.feature_names is not None
            and x.shape[1] == len(self.feature_names)
        ):
            # Trained with named features: an unnamed array in the same order is fine.
            x = _named_frame(x, self.feature_names)
        try:
            out = self.booster.inplace_predict(x)
        except Exception as err:  # xgboost raises XGBoostError (a ValueError subclass)
            raise InvalidInputError(f"XGBoost rejected the input: {err}") from err
        return np.asarray(out)


def _named_frame(x: np.ndarray[Any, Any], names: list[str]) -> Any:
    # Only for boosters trained on named features.
    pd = require("pandas", package="pandas", extra="batch", purpose="boosters with feature names")
    return pd.DataFrame(x, columns=names)

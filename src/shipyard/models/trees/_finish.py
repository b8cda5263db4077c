"""The last step from raw sums to the framework's answer, as data plus one function.

A scikit-learn forest or boosting model ends the same way every time: divide by the
number of trees, or apply the loss's link; then probabilities, or the class label of the
largest. ``FinishSpec`` holds what that needs (the kind, the method, the class labels),
``finish`` does it. The full load and the cache-only load (``_cached``) both call
``finish``, so they answer alike; the spec is saved beside the model's arrays (JSON,
never a pickle) so the cache-only load needs neither scikit-learn nor the model file's
objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["FinishSpec", "classes_from_json", "classes_to_json", "finish"]


@dataclass(frozen=True)
class FinishSpec:
    """What turns raw sums (rows, outputs) into what ``method`` of the model returns."""

    kind: Literal["forest", "boosting"]
    method: str
    classifier: bool
    classes: np.ndarray[Any, Any] | None = None
    """The model's ``classes_`` (labels keep their dtype: int, str, ...)."""
    divisor: int = 1
    """forest: ``len(estimators_)``, the forest's own ``proba /= n``."""
    hist: bool = False
    """boosting: HistGradientBoosting (its label rule and link), else GradientBoosting."""
    link: str | None = None
    """boosting: ``"identity"`` when the loss's link is the identity, else its class name."""

    @property
    def needs_loss(self) -> bool:
        """Whether ``finish`` needs the framework's loss object (the model loaded)."""
        if self.kind != "boosting":
            return False
        if self.classifier:
            return self.method == "predict_proba"
        return self.hist and self.link != "identity"


def finish(spec: FinishSpec, raw: np.ndarray[Any, Any], loss: Any = None) -> np.ndarray[Any, Any]:
    """The framework's answer from the kernel's raw sums (``loss``: the model's ``_loss``,
    only when ``spec.needs_loss``)."""
    if spec.kind == "forest":
        raw /= spec.divisor  # the forest's own "proba /= len(self.estimators_)"
        if not spec.classifier:
            return raw[:, 0]
        if spec.method == "predict_proba":
            return raw
        return np.asarray(spec.classes.take(np.argmax(raw, axis=1), axis=0))  # type: ignore[union-attr]
    if not spec.classifier:
        # GradientBoostingRegressor returns raw sums; HistGradientBoosting its link's inverse.
        if spec.hist and spec.link != "identity":
            return np.asarray(loss.link.inverse(raw.ravel()))
        return raw.ravel()
    decision = raw.ravel() if raw.shape[1] == 1 else raw
    if spec.method == "decision_function":
        return decision
    if spec.method == "predict_proba":
        # GradientBoosting passes decision_function's output, HistGradientBoosting raw.
        return np.asarray(loss.predict_proba(raw if spec.hist else decision))
    if raw.shape[1] == 1:
        # GradientBoosting: raw >= 0; HistGradientBoosting: raw > 0 (their own rules).
        encoded = (decision > 0 if spec.hist else decision >= 0).astype(int)
    else:
        encoded = np.argmax(raw, axis=1)
    return np.asarray(spec.classes[encoded])  # type: ignore[index]


def classes_to_json(classes: np.ndarray[Any, Any]) -> dict[str, Any] | None:
    """Labels as JSON with their dtype, or None when JSON cannot keep them exactly."""
    arr = np.asarray(classes)
    if arr.ndim != 1 or arr.dtype.kind not in "biufUO":
        return None
    values = arr.tolist()
    if arr.dtype.kind == "O" and not all(
        type(v) in (str, int, float) or isinstance(v, str) for v in values
    ):
        return None  # labels of other types (tuples, None, ...): only a pickle keeps them
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return None
    return {"dtype": arr.dtype.str, "values": values}


def classes_from_json(data: dict[str, Any]) -> np.ndarray[Any, Any]:
    dtype = np.dtype(data["dtype"])
    values = data["values"]
    if dtype.kind == "O":
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr
    return np.asarray(values, dtype=dtype)

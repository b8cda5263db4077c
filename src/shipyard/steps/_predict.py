"""``prediction_step``: send data to a model server, get its predictions back.

``predictor`` is the same step under its old name (recorded as ``predictor``), kept for
pipelines written before the rename: the name read as the ``Predictor`` class.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.errors import ServiceError
from shipyard.pipelines import step
from shipyard.services import Service

__all__ = ["prediction_step", "predictor"]


def _predict(service: Service, data: Any) -> np.ndarray:
    """The predictions of ``service`` for ``data`` (rows as an array, list or DataFrame).

    Never cached: the answer depends on which model the server runs now.
    """
    if not service.is_running:
        reason = f": {service.status.last_error}" if service.status.last_error else ""
        raise ServiceError(
            f"The model server {service.uuid} is {service.status.state.value}{reason}. "
            f"Start it with `shipyard model-deployer models start {service.uuid}`."
        )
    rows = data.to_numpy() if hasattr(data, "to_numpy") else data
    return np.asarray(service.predict(rows))


prediction_step = step(name="prediction_step", enable_cache=False)(_predict)

#: Deprecated: the old name of ``prediction_step`` (its runs keep recording ``predictor``).
predictor = step(name="predictor", enable_cache=False)(_predict)

"""The predictor contract: one class shape for every backend.

A predictor runs unchanged in the model server, in batch inference, in Ray Serve and in
the Kubernetes containers, so nothing here knows about HTTP or gRPC.

Data shapes: ``preprocess`` gets one request's inputs as the predictor's ``input_type``
(a ``numpy.ndarray``, a ``pandas.DataFrame`` or a ``dict[str, numpy.ndarray]``), the same
from every wire protocol and from batch inference; see ``shipyard.models._inputs``. ``predict``
gets the (possibly batched) result of ``preprocess``; when the server batches, several
requests' preprocessed inputs are concatenated along the first axis, and the output is
split back by row counts before ``postprocess`` runs once per request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

__all__ = ["Predictor"]


class Predictor:
    """Base class for built-in runtimes and users' custom predictors.

    Subclassing is optional: any class with ``load`` and ``predict`` works. Each hook may
    be ``async def``; the server decides once, at load time, how to call it.
    """

    #: Whether ``predict`` accepts a batch of several requests' rows concatenated along
    #: axis 0 and returns one row of output per input row. Adaptive batching is on only
    #: where this holds.
    supports_batching: ClassVar[bool] = True

    #: What ``preprocess`` (or ``predict``, without one) receives from every route, from
    #: ``load_model(...).predict`` and from batch inference: ``"numpy"`` (an array),
    #: ``"pandas"`` (a DataFrame, columns named as in the signature) or ``"dict"`` (name
    #: -> array). ``None``: follow the saved signature (see ``Signature.input_type``).
    input_type: ClassVar[str | None] = None

    def load(self, model_dir: Path) -> None:
        """Load the model from ``model_dir`` (a local directory); called once per worker."""

    def preprocess(self, request: Any) -> Any:
        """Turn one request's decoded inputs into model inputs. Default: unchanged."""
        return request

    def predict(self, inputs: Any) -> Any:
        """Return predictions for ``inputs``: an array, a dict of arrays, or a DataFrame."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict()")

    def postprocess(self, outputs: Any) -> Any:
        """Turn one request's model outputs into its answer. Default: unchanged."""
        return outputs

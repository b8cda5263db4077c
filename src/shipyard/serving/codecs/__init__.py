"""Wire codecs: each turns one protocol's bytes into an ``InferenceRequest`` and an
``InferenceResponse`` back into bytes. None of them knows HTTP or the predictor."""

from shipyard.serving.codecs import kserve_v1, mlflow, seldon, v2

__all__ = ["kserve_v1", "mlflow", "seldon", "v2"]

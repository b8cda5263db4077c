"""Shipyard models in KServe's own Python server, ``kserve.ModelServer`` (V1 and V2 REST).

For clusters that standardise on KServe's server (its logging, metrics and V1 protocol)
rather than ``shipyard serve``: the container runs

    python -m shipyard.deployers.kserve.model_server --model_dir /mnt/models \
        --model_name NAME [--http_port 8080] [--host 0.0.0.0] \
        [--origin STORAGE_URI] [--trust | --sha256 HEX]

and any model directory Shipyard loads (a custom predictor included) answers
``POST /v1/models/NAME:predict`` (``{"instances": [...]}``) and V2 ``infer``. Needs the
``kserve`` package (tested with kserve 0.16.0); nothing here is imported by Shipyard itself.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["main", "model_class"]


def model_class() -> type:
    """``ShipyardKServeModel``: a ``kserve.Model`` serving a Shipyard model directory (built
    on call, as it needs the ``kserve`` package)."""
    import kserve
    import numpy as np
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    import shipyard
    from shipyard.models import datatype_for_dtype

    class ShipyardKServeModel(kserve.Model):  # type: ignore[misc]
        """A Shipyard model directory as a KServe model."""

        def __init__(self, name: str, model_dir: str, trust: dict[str, Any] | None = None) -> None:
            super().__init__(name)
            self.model_dir = model_dir
            self.trust = dict(trust or {})
            self.model: Any = None

        def load(self) -> bool:
            self.model = shipyard.load_model(self.model_dir, **self.trust)
            self.ready = True
            return True

        async def predict(
            self,
            payload: Any,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> Any:
            if isinstance(payload, InferRequest):
                rows = payload.inputs[0].as_numpy()
                result = np.asarray(self.model.predict(rows))
                output = InferOutput(
                    name="output-0",
                    shape=list(result.shape),
                    datatype=datatype_for_dtype(result.dtype),
                )
                output.set_data_from_numpy(result, binary_data=False)
                return InferResponse(
                    response_id=payload.id or "",
                    model_name=self.name,
                    infer_outputs=[output],
                )
            rows = np.asarray(payload["instances"])
            return {"predictions": np.asarray(self.model.predict(rows)).tolist()}

    return ShipyardKServeModel


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True, help="The model directory.")
    parser.add_argument("--model_name", default="model", help="Name in the V1/V2 paths.")
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (a pod: 0.0.0.0).")
    # The pod's trust decision, as the kserve/seldon flavors set it for `shipyard serve`.
    parser.add_argument(
        "--origin",
        default=os.environ.get("SHIPYARD_MODEL_ORIGIN") or None,
        help="The URI the model's files were downloaded from: its trust rule applies.",
    )
    parser.add_argument(
        "--trust",
        action="store_true",
        default=os.environ.get("SHIPYARD_MODEL_TRUSTED", "").lower() in ("1", "true", "yes"),
        help="Trust the model's code (a remote pickle/joblib model).",
    )
    parser.add_argument(
        "--sha256",
        default=os.environ.get("SHIPYARD_MODEL_SHA256") or None,
        help="The model's pinned content SHA-256, checked before loading.",
    )
    ours, _ = parser.parse_known_args(argv)
    trust = {"origin": ours.origin, "trusted": ours.trust, "sha256": ours.sha256}

    # kserve reads its own flags (--http_port, --workers, ...) from sys.argv on import.
    import kserve
    from kserve import model_server

    class _RESTServer(model_server.RESTServer):  # type: ignore[misc]
        # KServe always binds 0.0.0.0; outside a pod we bind what we are told.
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = ours.host

    model_server.RESTServer = _RESTServer
    model = model_class()(ours.model_name, ours.model_dir, trust)
    model.load()
    kserve.ModelServer(enable_grpc=False).start([model])


if __name__ == "__main__":
    main()

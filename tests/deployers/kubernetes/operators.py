"""The test's stand-ins for the KServe and Seldon controllers: reconcile functions that
write the status a real operator would, after "loading" the model the pods would get.

"Loading" maps the storage URI back to the uploaded folder and loads it with Shipyard,
so a model that cannot load gets the operator's failure status, with the reason.
Every object they see is also checked against the CRD schema (``problems``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import shipyard

from .crds import errors

STORE_URI = "s3://models-bucket/shipyard"


class Operator:
    """Shared bookkeeping: one pending round per new generation, the loads, the checks."""

    def __init__(
        self, bucket: Path, mode: str = "Standard", remote: dict[str, str] | None = None
    ) -> None:
        self.bucket = bucket
        self.mode = mode
        #: Remote storage URIs the "storage initializer" finds, and the folder each holds.
        self.remote = dict(remote or {})
        self.problems: list[str] = []
        #: (name, generation) -> rounds seen; the first round reports "not ready yet".
        self.rounds: dict[tuple[str, int], int] = {}
        self.loads: dict[str, str] = {}
        #: Every status written, in order, for the tests' assertions.
        self.written: list[tuple[str, int, str]] = []

    def load(self, uri: str) -> str:
        """'' when the model at ``uri`` loads, else why not."""
        if uri not in self.loads:
            path = (
                Path(self.remote[uri])
                if uri in self.remote
                else self.bucket / uri.removeprefix(STORE_URI + "/")
            )
            try:
                shipyard.load_model(str(path))
                self.loads[uri] = ""
            except Exception as err:
                self.loads[uri] = f"{type(err).__name__}: {err}"
        return self.loads[uri]

    def first_round(self, obj: dict[str, Any]) -> bool:
        key = (obj["metadata"]["name"], int(obj["metadata"].get("generation", 1)))
        self.rounds[key] = self.rounds.get(key, 0) + 1
        return self.rounds[key] == 1

    def check(self, obj: dict[str, Any]) -> None:
        body = {k: v for k, v in obj.items() if k != "status"}
        self.problems += [f"{obj['metadata']['name']}: {p}" for p in errors(body)]


def _model_status(failure: str) -> dict[str, Any]:
    if not failure:
        return {
            "transitionStatus": "UpToDate",
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
        }
    return {
        "transitionStatus": "BlockedByFailedLoad",
        "states": {"activeModelState": "FailedToLoad", "targetModelState": "FailedToLoad"},
        "lastFailureInfo": {"reason": "ModelLoadFailed", "message": failure},
    }


class KServeOperator(Operator):
    def __call__(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        self.check(obj)
        meta, spec = obj["metadata"], obj.get("spec") or {}
        name, namespace = meta["name"], meta.get("namespace", "")
        generation = int(meta.get("generation", 1))
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "deploymentMode": self.mode,
            "url": f"http://{name}-{namespace}.example.com",
            "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
        }
        if (meta.get("annotations") or {}).get("serving.kserve.io/stop") == "true":
            status["conditions"] = [
                {"type": "Ready", "status": "False", "reason": "Stopped"},
                {"type": "Stopped", "status": "True"},
            ]
            return self.log(name, generation, status, "stopped")
        if self.first_round(obj):
            status["conditions"] = [
                {"type": "PredictorReady", "status": "Unknown", "reason": "Pending"},
                {"type": "Ready", "status": "False", "reason": "PredictorNotReady"},
            ]
            return self.log(name, generation, status, "pending")
        failure = self.load(spec["predictor"]["model"]["storageUri"])
        status["modelStatus"] = _model_status(failure)
        ready = "False" if failure else "True"
        status["conditions"] = [
            {"type": "PredictorReady", "status": ready},
            {"type": "Ready", "status": ready},
        ]
        canaries = []
        for canary in spec.get("canary") or []:
            trouble = self.load(canary["predictor"]["model"]["storageUri"])
            canaries.append(
                {
                    "name": f"{name}-canary",
                    "ready": not trouble,
                    "trafficPercent": canary["trafficPercent"],
                    "modelStatus": _model_status(trouble),
                }
            )
        if canaries:
            status["canaryStatuses"] = canaries
        return self.log(name, generation, status, "failed" if failure else "ready")

    def log(self, name: str, generation: int, status: dict[str, Any], what: str) -> dict[str, Any]:
        if not self.written or self.written[-1] != (name, generation, what):
            self.written.append((name, generation, what))
        return status


class SeldonOperator(Operator):
    def __call__(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        self.check(obj)
        meta, spec = obj["metadata"], obj.get("spec") or {}
        name, namespace = meta["name"], meta.get("namespace", "")
        predictor = spec["predictors"][0]
        status: dict[str, Any] = {
            "address": {"url": f"http://{name}-default.{namespace}.svc.cluster.local:8000/"}
        }
        if predictor.get("replicas", 1) == 0:
            return {**status, "state": "Available", "replicas": 0}
        if self.first_round(obj):
            return {**status, "state": "Creating", "description": "Waiting for deployments"}
        failure = self.load(predictor["graph"]["modelUri"])
        if failure:
            return {**status, "state": "Failed", "description": failure}
        return {**status, "state": "Available", "replicas": predictor.get("replicas", 1)}

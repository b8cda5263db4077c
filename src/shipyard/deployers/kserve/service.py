"""KServeDeploymentService: one InferenceService, its status read as ours."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from shipyard.deployers._kubernetes import (
    CustomResource,
    KubernetesModelService,
    Observation,
    annotations_of,
)
from shipyard.deployers.kserve.config import KServeDeploymentConfig
from shipyard.deployers.kserve.manifest import INFERENCE_SERVICE, STOP_ANNOTATION
from shipyard.services.state import ServiceState

__all__ = ["STOPPED_ANNOTATION", "KServeDeploymentService"]

#: Set by `stop`: what `start` restores ("min-replicas=N" in Knative mode, else "stop").
STOPPED_ANNOTATION = "shipyard.dev/stopped"

_BLOCKED = ("BlockedByFailedLoad", "InvalidSpec")


class KServeDeploymentService(KubernetesModelService):
    """A model served by KServe; ``prediction_url`` is its V2 infer endpoint."""

    RESOURCE: ClassVar[CustomResource] = INFERENCE_SERVICE
    STOPPED_ANNOTATION: ClassVar[str] = STOPPED_ANNOTATION

    config: KServeDeploymentConfig = Field(default_factory=KServeDeploymentConfig)
    #: The mode the cluster runs it in (status.deploymentMode), last seen.
    deployment_mode: str = ""

    def log_selector(self) -> str:
        return f"serving.kserve.io/inferenceservice={self.resource_name}"

    def observe(self, resource: dict[str, Any]) -> Observation:
        metadata = resource.get("metadata") or {}
        annotations = annotations_of(resource)
        status = resource.get("status") or {}
        url = status.get("url") or (status.get("address") or {}).get("url") or ""
        self.deployment_mode = status.get("deploymentMode") or self.deployment_mode
        if annotations.get(STOPPED_ANNOTATION) or annotations.get(STOP_ANNOTATION) == "true":
            return Observation(ServiceState.INACTIVE, None, url)
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        generation = metadata.get("generation")
        observed = status.get("observedGeneration")
        if generation is not None and (observed is None or int(observed) < int(generation)):
            return Observation(
                ServiceState.PENDING_STARTUP,
                None,
                url,
            )
        failure = _failure(status)
        ready = conditions.get("Ready") or {}
        if ready.get("status") == "True" and not failure:
            return Observation(ServiceState.ACTIVE, None, url)
        if failure:
            return Observation(ServiceState.ERROR, failure, url)
        return Observation(ServiceState.PENDING_STARTUP, None, url)

    def canary_ready(self, resource: dict[str, Any]) -> bool:
        """Whether every canary the operator reports is ready (Standard mode)."""
        canaries = (resource.get("status") or {}).get("canaryStatuses") or []
        return bool(canaries) and all(c.get("ready") for c in canaries)

    def canary_failure(self, resource: dict[str, Any]) -> str:
        canaries = (resource.get("status") or {}).get("canaryStatuses") or []
        return "; ".join(
            f"canary {c.get('name', '?')}: {reason}" for c in canaries if (reason := _failure(c))
        )

    # -- lifecycle -------------------------------------------------------------------------

    def stop_patch(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Knative mode: scale to zero (a request wakes it). Standard mode: KServe's stop
        annotation (the pods go, the InferenceService stays)."""
        mode = (resource.get("status") or {}).get("deploymentMode") or self.deployment_mode
        if mode in ("Serverless", "Knative"):
            predictor = (resource.get("spec") or {}).get("predictor") or {}
            low = predictor.get("minReplicas", 1)
            return {
                "metadata": {"annotations": {STOPPED_ANNOTATION: f"min-replicas={low}"}},
                "spec": {"predictor": {"minReplicas": 0}},
            }
        return {"metadata": {"annotations": {STOPPED_ANNOTATION: "stop", STOP_ANNOTATION: "true"}}}

    def start_patch(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        annotations = annotations_of(resource)
        marker = str(annotations.get(STOPPED_ANNOTATION) or "")
        patch: dict[str, Any] = {"metadata": {"annotations": {STOPPED_ANNOTATION: None}}}
        if marker.startswith("min-replicas="):
            patch["spec"] = {"predictor": {"minReplicas": int(marker.split("=", 1)[1])}}
        if annotations.get(STOP_ANNOTATION) == "true":
            patch["metadata"]["annotations"][STOP_ANNOTATION] = "false"
        return patch


def _failure(status: dict[str, Any]) -> str:
    """The operator's reason a model does not serve, from ``modelStatus``; else empty."""
    model = status.get("modelStatus") or {}
    info = model.get("lastFailureInfo") or {}
    if info:
        reason = info.get("reason", "")
        message = info.get("message", "")
        return f"{reason}: {message}" if reason and message else reason or message
    if model.get("transitionStatus") in _BLOCKED:
        return f"KServe reports {model['transitionStatus']}"
    return ""

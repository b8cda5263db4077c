"""SeldonDeploymentService: one SeldonDeployment, its ``state`` read as ours."""

from __future__ import annotations

import copy
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from shipyard.deployers._kubernetes import (
    CustomResource,
    KubernetesModelService,
    Observation,
    annotations_of,
)
from shipyard.deployers.seldon.config import SeldonDeploymentConfig
from shipyard.deployers.seldon.manifest import SELDON_DEPLOYMENT
from shipyard.services.state import ServiceState

__all__ = ["STOPPED_ANNOTATION", "SeldonDeploymentService"]

#: Set by `stop`: the replicas `start` restores.
STOPPED_ANNOTATION = "shipyard.dev/stopped-replicas"


class SeldonDeploymentService(KubernetesModelService):
    """A model served by Seldon Core; ``prediction_url`` goes through the ingress."""

    RESOURCE: ClassVar[CustomResource] = SELDON_DEPLOYMENT
    TRACKS_GENERATION: ClassVar[bool] = False
    STOPPED_ANNOTATION: ClassVar[str] = STOPPED_ANNOTATION

    config: SeldonDeploymentConfig = Field(default_factory=SeldonDeploymentConfig)

    def log_selector(self) -> str:
        return f"seldon-deployment-id={self.resource_name}"

    def route(self) -> str:
        # Seldon's Istio and Ambassador ingress both route /seldon/{namespace}/{name}/...
        return f"/seldon/{self.cluster.namespace}/{self.resource_name}"

    @property
    def endpoint_url(self) -> str | None:
        if self.base_url:
            return f"{self.base_url}{self.route()}"
        if not self.url:
            return None
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def host_header(self) -> str | None:
        return None  # the ingress routes by path, not by host

    def observe(self, resource: dict[str, Any]) -> Observation:
        annotations = annotations_of(resource)
        status = resource.get("status") or {}
        url = str((status.get("address") or {}).get("url") or "")
        if annotations.get(STOPPED_ANNOTATION):
            return Observation(ServiceState.INACTIVE, None, url)
        state = status.get("state", "")
        if state == "Available":
            return Observation(ServiceState.ACTIVE, None, url)
        if state == "Failed":
            reason = status.get("description") or "Seldon reports the deployment Failed"
            return Observation(ServiceState.ERROR, str(reason), url)
        return Observation(ServiceState.PENDING_STARTUP, None, url)

    def stop_patch(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Scale every predictor to zero replicas; the SeldonDeployment stays."""
        predictors = copy.deepcopy((resource.get("spec") or {}).get("predictors") or [])
        before = ",".join(str(p.get("replicas", 1)) for p in predictors)
        for predictor in predictors:
            predictor["replicas"] = 0
        return {
            "metadata": {"annotations": {STOPPED_ANNOTATION: before}},
            "spec": {"predictors": predictors},
        }

    def start_patch(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """The replicas ``stop`` saved."""
        saved = str(annotations_of(resource).get(STOPPED_ANNOTATION) or "")
        if not saved:
            return None
        predictors = copy.deepcopy((resource.get("spec") or {}).get("predictors") or [])
        for predictor, count in zip(predictors, saved.split(","), strict=False):
            predictor["replicas"] = int(count)
        return {
            "metadata": {"annotations": {STOPPED_ANNOTATION: None}},
            "spec": {"predictors": predictors},
        }

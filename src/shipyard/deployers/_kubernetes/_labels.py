"""Names, labels and annotations that let the registry be rebuilt from the cluster.

Labels carry what a selector filters on (who manages it, the service UUID, the flavor,
pipeline, step, run and model, each cut to a valid label value); annotations carry the
same values whole, plus the deployment config as JSON, so a lost store loses nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "ANNOTATION_CONFIG",
    "ANNOTATION_SERVICE_TYPE",
    "LABEL_FLAVOR",
    "LABEL_MANAGED_BY",
    "LABEL_UUID",
    "annotations_of",
    "label_value",
    "ownership",
    "resource_name",
    "selector",
]

_PREFIX = "shipyard.dev"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_UUID = f"{_PREFIX}/service-uuid"
LABEL_FLAVOR = f"{_PREFIX}/flavor"
ANNOTATION_CONFIG = f"{_PREFIX}/config"
ANNOTATION_SERVICE_TYPE = f"{_PREFIX}/service-type"

#: Config fields that are also labels (to select on) and annotations (to read back whole).
_IDENTITY = {
    "pipeline_name": "pipeline-name",
    "pipeline_step_name": "pipeline-step-name",
    "pipeline_run_id": "pipeline-run-id",
    "model_name": "model-name",
}

_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def label_value(text: str) -> str:
    """``text`` as a valid label value: letters, digits, ``-_.``, at most 63, alphanumeric
    at both ends (a label value's rules; the annotation keeps the original)."""
    value = _NOT_LABEL.sub("-", text)[:63]
    return value.strip("-_.")


def resource_name(model_name: str, uuid: str, limit: int = 40) -> str:
    """A DNS-1035 resource name from the model name and the start of the UUID.

    Short enough (40 by default) for the names operators derive from it: KServe adds
    ``-predictor`` and a Knative revision suffix, and a host name label stops at 63.
    """
    suffix = uuid.replace("-", "")[:8]
    base = _NOT_DNS.sub("-", model_name.lower()).strip("-")
    base = base[: limit - len(suffix) - 1].strip("-")
    if not base or not base[0].isalpha():
        base = f"m-{base}".strip("-")
    return f"{base}-{suffix}"


def ownership(
    flavor: str, uuid: str, service_type: str, config: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) for a resource holding the service ``uuid``."""
    labels = {LABEL_MANAGED_BY: "shipyard", LABEL_UUID: uuid, LABEL_FLAVOR: flavor}
    annotations = {
        ANNOTATION_SERVICE_TYPE: service_type,
        ANNOTATION_CONFIG: json.dumps(config, sort_keys=True, separators=(",", ":")),
    }
    for field, key in _IDENTITY.items():
        value = str(config.get(field) or "")
        if value:
            labels[f"{_PREFIX}/{key}"] = label_value(value)
            annotations[f"{_PREFIX}/{key}"] = value
    return labels, annotations


def selector(flavor: str) -> str:
    """The label selector of every resource this flavor manages."""
    return f"{LABEL_MANAGED_BY}=shipyard,{LABEL_FLAVOR}={flavor}"


def annotations_of(resource: dict[str, Any] | None) -> dict[str, Any]:
    """The annotations of a resource as the API returned it (none: an empty dict; the
    API leaves out empty ``metadata`` parts, and a resource may be gone)."""
    return ((resource or {}).get("metadata") or {}).get("annotations") or {}

"""The real CRD schemas (KServe v0.20.0, Seldon Core v1.17.1) as strict JSON Schemas.

They live in ``../shared/k8s-crds/`` beside the project (a worktree finds them further up).
Unknown fields are errors here: the API server would prune them silently.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

FILES = {
    "InferenceService": "kserve-v0.20.0-serving.kserve.io_inferenceservices.yaml",
    "ServingRuntime": "kserve-v0.20.0-serving.kserve.io_servingruntimes.yaml",
    "ClusterServingRuntime": "kserve-v0.20.0-serving.kserve.io_clusterservingruntimes.yaml",
    "SeldonDeployment": "seldon-core-v1.17.1-machinelearning.seldon.io_seldondeployments.yaml",
}


def crd_dir() -> Path:
    """``$SHIPYARD_K8S_CRDS``, else the first ``shared/k8s-crds`` above the project."""
    if os.environ.get("SHIPYARD_K8S_CRDS"):
        return Path(os.environ["SHIPYARD_K8S_CRDS"])
    root = Path(__file__).resolve().parents[3]
    for parent in root.parents:  # ../shared first, then further up (a worktree)
        candidate = parent / "shared" / "k8s-crds"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "The CRD schemas are not found: put shared/k8s-crds beside the project, or set "
        "SHIPYARD_K8S_CRDS to their folder."
    )


def _strict(schema: Any) -> Any:
    """Turn an OpenAPI v3 structural schema into a JSON Schema that refuses unknown keys."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: _strict(value) for key, value in schema.items() if not key.startswith("x-kubernetes-")
    }
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        out["additionalProperties"] = False
    return out


@functools.cache
def schema(kind: str, version: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # 2 MB files: the C parser
    crd = yaml.load((crd_dir() / FILES[kind]).read_text(), Loader=loader)
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            strict: dict[str, Any] = _strict(entry["schema"]["openAPIV3Schema"])
            # metadata is `type: object` in a CRD; the API server checks ObjectMeta itself.
            return strict
    raise KeyError(f"{kind} has no version {version}")


def errors(manifest: dict[str, Any]) -> list[str]:
    """Every schema violation of ``manifest`` (empty when valid), as ``path: message``."""
    import jsonschema

    kind = manifest["kind"]
    version = manifest["apiVersion"].split("/")[-1]
    validator = jsonschema.Draft202012Validator(schema(kind, version))
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    )

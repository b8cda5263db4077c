"""JSON merge patches (RFC 7386) between two versions of a custom resource: the one that
applies an update, and the one that reverts it."""

from __future__ import annotations

from typing import Any

__all__ = ["merge_patch", "spec_patches"]


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


def spec_patches(current: dict[str, Any], new: dict[str, Any]) -> tuple[Any, Any]:
    """(forward, back): merge patches from ``current`` to ``new`` and back again.

    The spec is ours, so it is replaced whole; of the metadata only our labels and
    annotations change (others' keys, e.g. kubectl's, are left alone).
    """
    meta_now = current.get("metadata") or {}
    meta_new = new.get("metadata") or {}
    forward: dict[str, Any] = {
        "metadata": {},
        "spec": merge_patch(current.get("spec"), new["spec"]),
    }
    back: dict[str, Any] = {"metadata": {}, "spec": merge_patch(new["spec"], current.get("spec"))}
    for part in ("labels", "annotations"):
        wanted = meta_new.get(part) or {}
        had = meta_now.get(part) or {}
        forward["metadata"][part] = {k: v for k, v in wanted.items() if had.get(k) != v}
        back["metadata"][part] = {k: had.get(k) for k in forward["metadata"][part]}
    return forward, back

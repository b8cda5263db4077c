"""What ZenML users return from steps beyond single values: containers, and the rest.

``train_test_split(...)`` returns a list; a step may return a tuple, a dict of metrics and
arrays, a set. A container is saved item by item, each with its own materializer (nested
containers too), so its arrays stay ``.npy`` and its frames Parquet. A value no
materializer takes is written with cloudpickle as a last resort, with a warning naming the
Python and library versions it will need to be read back (as ZenML does).
"""

from __future__ import annotations

import json
import logging
import platform
import posixpath
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar

import fsspec

from shipyard.pipelines._errors import ArtifactError

if TYPE_CHECKING:
    from shipyard.pipelines._materializers import Materializer

__all__ = ["CloudpickleMaterializer", "ContainerMaterializer"]

logger = logging.getLogger("shipyard.pipelines")

_KINDS: dict[type, str] = {
    list: "list",
    tuple: "tuple",
    set: "set",
    frozenset: "frozenset",
    dict: "dict",
}
_JSON_KEYS = (str, int, float, bool, type(None))

#: Finds the materializer for an item: (value) -> materializer, and (name) -> materializer.
Finder = Callable[[Any], Any]


class ContainerMaterializer:
    """A list, tuple, set or dict: ``container.json`` plus one folder per item."""

    name: ClassVar[str] = "container"

    def __init__(self, find: Finder, named: Finder) -> None:
        self._find = find
        self._named = named

    def can_save(self, value: Any) -> bool:
        kind = _KINDS.get(type(value))
        if kind is None:
            return False
        return kind != "dict" or all(isinstance(k, _JSON_KEYS) for k in value)

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        kind = _KINDS[type(value)]
        pairs = list(value.items()) if kind == "dict" else [(None, v) for v in value]
        items = []
        for index, (key, item) in enumerate(pairs):
            materializer = self._find(item)
            materializer.save(item, posixpath.join(uri, str(index)))
            entry: dict[str, Any] = {"materializer": materializer.name}
            if kind == "dict":
                entry["key"] = key
            items.append(entry)
        with fsspec.open(posixpath.join(uri, "container.json"), "w") as handle:
            json.dump({"kind": kind, "items": items}, handle)
        return {"kind": kind, "length": len(items)}

    def load(self, uri: str) -> Any:
        with fsspec.open(posixpath.join(uri, "container.json"), "r") as handle:
            spec = json.load(handle)
        values = [
            self._named(entry["materializer"]).load(posixpath.join(uri, str(index)))
            for index, entry in enumerate(spec["items"])
        ]
        kind = spec["kind"]
        if kind == "dict":
            return {e["key"]: v for e, v in zip(spec["items"], values, strict=True)}
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](values)


def _versions(value: Any) -> dict[str, str]:
    """Python's version and that of each library the value's classes come from."""
    versions = {"python": platform.python_version()}
    owners = metadata.packages_distributions()
    module = type(value).__module__.split(".")[0]
    for dist in owners.get(module, []):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


class CloudpickleMaterializer:
    """The last resort: ``value.pkl`` written by cloudpickle, readable only by the same
    Python and library versions (recorded in ``versions.json`` and warned about)."""

    name: ClassVar[str] = "cloudpickle"

    def can_save(self, value: Any) -> bool:
        return True

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        import cloudpickle

        versions = _versions(value)
        listed = ", ".join(f"{k} {v}" for k, v in versions.items())
        logger.warning(
            "No materializer saves a %s; writing it with cloudpickle to %s. Reading it back "
            "needs the same versions: %s. Give the step materializers=[...] to store it "
            "portably.",
            type(value).__qualname__,
            uri,
            listed,
        )
        try:
            data = cloudpickle.dumps(value)
        except Exception as err:
            raise ArtifactError(
                f"A {type(value).__qualname__} cannot be saved: no materializer takes it and "
                f"cloudpickle fails ({type(err).__name__}: {err}). Return plain values, or "
                "give the step materializers=[...]."
            ) from err
        with fsspec.open(posixpath.join(uri, "value.pkl"), "wb") as handle:
            handle.write(data)
        with fsspec.open(posixpath.join(uri, "versions.json"), "w") as handle:
            json.dump(versions, handle)
        return {"type": f"{type(value).__module__}.{type(value).__qualname__}", **versions}

    def load(self, uri: str) -> Any:
        import cloudpickle

        with fsspec.open(posixpath.join(uri, "value.pkl"), "rb") as handle:
            return cloudpickle.loads(handle.read())


def fallbacks(find: Finder, named: Finder) -> tuple[Materializer, ...]:
    """The materializers asked after every other: containers, then cloudpickle."""
    return (ContainerMaterializer(find, named), CloudpickleMaterializer())

"""The packages a pickled model needs: every module its objects come from, with versions.

A scikit-learn-style wrapper (``LGBMClassifier``, ``XGBClassifier``, a pipeline holding
one) is pickled with the sklearn format, but unpickling it imports lightgbm or xgboost;
the saved requirements must say so, or the model fails where it is deployed.
"""

from __future__ import annotations

import io
import pickle
import sys
from importlib import metadata
from typing import Any

__all__ = ["pickled_requirements"]

#: Never requirements: part of Python, or the package doing the loading.
_IGNORED = {"builtins", "__main__", "shipyard", "copyreg", "_codecs"}


class _ModuleRecorder(pickle.Pickler):
    """Pickles into nothing, noting the top-level module of every object it meets."""

    def __init__(self) -> None:
        super().__init__(_Sink(), protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: set[str] = set()

    def persistent_id(self, obj: Any) -> None:
        for module in (type(obj).__module__, getattr(obj, "__module__", None)):
            if isinstance(module, str):
                self.modules.add(module.split(".")[0])
        return None


class _Sink(io.RawIOBase):
    """A writable file that keeps nothing (a model can be large)."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(memoryview(data))


def pickled_requirements(model: Any) -> list[str]:
    """``dist==version`` for every installed distribution whose modules ``model`` uses."""
    recorder = _ModuleRecorder()
    try:
        recorder.dump(model)
    except Exception:  # the real save reports unpicklable models, with its own message
        return []
    owners = metadata.packages_distributions()
    pins: dict[str, str] = {}
    for module in sorted(recorder.modules):
        if module in _IGNORED or module in sys.stdlib_module_names or module.startswith("_"):
            continue
        for dist in owners.get(module, []):
            try:
                pins.setdefault(dist.lower(), f"{dist}=={metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                continue
    return list(pins.values())

"""The packages a pickled model needs: every module its objects come from, with versions.

A scikit-learn-style wrapper (``LGBMClassifier``, ``XGBClassifier``, a pipeline holding
one) is pickled with the sklearn format, but unpickling it imports lightgbm or xgboost;
the saved requirements must say so, or the model fails where it is deployed.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
from importlib import metadata
from typing import Any

__all__ = ["pickled_file_requirements", "pickled_requirements"]

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
    return _pins(recorder.modules)


class _Stand:
    """What an object of the file becomes while its classes are read: takes any
    arguments and any state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Stand:
        return _Stand()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


#: What arrays are made of: the only things built while a file's classes are read.
#: (joblib reads an object array's nested pickle through the same ``find_class``.)
_BUILT = {
    *((m, n) for m in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray")
      for n in ("dtype", "ndarray", "_reconstruct", "scalar")),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
}  # fmt: skip


def _reading_unpickler(base: Any) -> Any:
    class Reader(base):  # type: ignore[misc]
        """Notes the module of every class the file names; builds none of them but
        numpy's (arrays, dtypes) and joblib's array wrapper, which run no user code."""

        modules: set[str]

        def find_class(self, module: str, name: str) -> Any:
            self.modules.add(module.split(".")[0])
            if (module, name) in _BUILT or (module == "numpy.dtypes" and name.endswith("DType")):
                return super().find_class(module, name)
            return _Stand

    return Reader


def _read(reader: Any, modules: set[str]) -> None:
    reader.modules = modules
    reader.load()


def pickled_file_requirements(path: str | os.PathLike[str]) -> list[str]:
    """The same for a pickle or joblib file (compressed or not), read without running its
    code: every class it names is noted, none of them (but numpy arrays) is built."""
    modules: set[str] = set()
    try:
        with open(path, "rb") as raw:
            try:
                from joblib.numpy_pickle import NumpyUnpickler
                from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap
            except ImportError:
                _read(_reading_unpickler(pickle.Unpickler)(raw), modules)
            else:
                with _validate_fileobject_and_memmap(raw, str(path)) as (fobj, _):
                    _read(_reading_unpickler(NumpyUnpickler)(str(path), fobj, False), modules)
    except Exception:  # a damaged or unusual file: what was read so far still counts
        pass
    return _pins(modules)


def _pins(modules: set[str]) -> list[str]:
    owners = metadata.packages_distributions()
    pins: dict[str, str] = {}
    for module in sorted(modules):
        if module in _IGNORED or module in sys.stdlib_module_names or module.startswith("_"):
            continue
        for dist in owners.get(module, []):
            try:
                pins.setdefault(dist.lower(), f"{dist}=={metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                continue
    return list(pins.values())

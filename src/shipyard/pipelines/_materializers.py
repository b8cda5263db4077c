"""Materializers: how a step output becomes files in the artifact store, and back.

Each one is a small class with ``can_save``, ``save`` and ``load``. The orchestrator asks
them in order and records the name of the one that wrote an artifact, so reading it back
never guesses.
"""

from __future__ import annotations

import json
import math
import posixpath
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import fsspec

from shipyard._imports import require
from shipyard.errors import MissingDependencyError
from shipyard.pipelines._errors import ArtifactError
from shipyard.pipelines._service_materializer import ServiceMaterializer

__all__ = [
    "DEFAULT_MATERIALIZERS",
    "JsonMaterializer",
    "Materializer",
    "ModelMaterializer",
    "NumpyMaterializer",
    "PandasMaterializer",
    "ServiceMaterializer",
    "materializer_for",
    "materializer_named",
]


class Materializer(Protocol):
    """``can_save``/``save``/``load``. A materializer whose outputs must never be reused
    from the step cache (a live server, say) also sets ``cacheable = False``."""

    name: ClassVar[str]

    def can_save(self, value: Any) -> bool: ...

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        """Write ``value`` below ``uri``; return a small JSON-able summary of it."""
        ...

    def load(self, uri: str) -> Any: ...


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        # JSON has no NaN/inf; refusing here beats writing a file no JSON reader accepts.
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    """NumPy scalars (what sklearn metrics return) as the Python values they stand for."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a core dependency
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


class JsonMaterializer:
    """Numbers, strings, booleans, None, and lists/dicts of them: ``value.json``."""

    name: ClassVar[str] = "json"

    def can_save(self, value: Any) -> bool:
        return _is_json_value(_plain(value))

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        value = _plain(value)
        with fsspec.open(posixpath.join(uri, "value.json"), "w") as handle:
            json.dump(value, handle, sort_keys=True)
        text = json.dumps(value, sort_keys=True)
        return {"value": value} if len(text) <= 200 else {"size": len(text)}

    def load(self, uri: str) -> Any:
        with fsspec.open(posixpath.join(uri, "value.json"), "r") as handle:
            return json.load(handle)


class NumpyMaterializer:
    """A NumPy array: ``array.npy`` (no pickles: object arrays are refused)."""

    name: ClassVar[str] = "numpy"

    def can_save(self, value: Any) -> bool:
        import numpy as np

        return isinstance(value, np.ndarray) and value.dtype != object

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        import numpy as np

        with fsspec.open(posixpath.join(uri, "array.npy"), "wb") as handle:
            np.save(handle, value, allow_pickle=False)
        return {"shape": list(value.shape), "dtype": str(value.dtype)}

    def load(self, uri: str) -> Any:
        import numpy as np

        with fsspec.open(posixpath.join(uri, "array.npy"), "rb") as handle:
            return np.load(handle, allow_pickle=False)


class PandasMaterializer:
    """A pandas DataFrame or Series: ``data.parquet`` (a Series comes back as a Series)."""

    name: ClassVar[str] = "pandas"

    def can_save(self, value: Any) -> bool:
        try:
            import pandas as pd
        except ImportError:
            return False
        return isinstance(value, pd.DataFrame | pd.Series)

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        import pandas as pd

        require("pyarrow", package="pyarrow", extra="batch", purpose="pandas step outputs")
        is_series = isinstance(value, pd.Series)
        frame = value.to_frame() if is_series else value
        with fsspec.open(posixpath.join(uri, "data.parquet"), "wb") as handle:
            frame.to_parquet(handle)
        with fsspec.open(posixpath.join(uri, "pandas.json"), "w") as handle:
            json.dump({"kind": "series" if is_series else "frame"}, handle)
        return {"kind": "series" if is_series else "frame", "shape": list(value.shape)}

    def load(self, uri: str) -> Any:
        import pandas as pd

        with fsspec.open(posixpath.join(uri, "pandas.json"), "r") as handle:
            kind = json.load(handle)["kind"]
        with fsspec.open(posixpath.join(uri, "data.parquet"), "rb") as handle:
            frame = pd.read_parquet(handle)
        return frame.iloc[:, 0] if kind == "series" else frame


class ModelMaterializer:
    """A trained model (anything with ``predict``): a model directory from ``save_model``.

    The directory is what the model server loads, so its URI is what deployer steps deploy.
    """

    name: ClassVar[str] = "model"

    def can_save(self, value: Any) -> bool:
        return callable(getattr(value, "predict", None)) and not isinstance(value, type)

    def save(self, value: Any, uri: str) -> dict[str, Any]:
        from shipyard.models import save_model

        fs, path = fsspec.core.url_to_fs(uri)
        try:
            if _is_local(fs):
                save_model(value, path)
            else:
                # save_model writes local files; remote stores get a copy of the directory.
                with tempfile.TemporaryDirectory() as tmp:
                    local = Path(tmp) / "model"
                    save_model(value, local)
                    fs.put(str(local), path, recursive=True)
        except MissingDependencyError:
            raise
        except Exception as err:
            raise ArtifactError(
                f"Could not save the model of type {type(value).__qualname__} as a model "
                f"directory at '{uri}': {err}"
            ) from err
        return {"model_type": f"{type(value).__module__}.{type(value).__qualname__}"}

    def load(self, uri: str) -> Any:
        from shipyard.models import load_model

        return load_model(uri)


def _is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


#: Asked in this order; the first that can save a value writes it.
DEFAULT_MATERIALIZERS: tuple[Materializer, ...] = (
    ServiceMaterializer(),
    NumpyMaterializer(),
    PandasMaterializer(),
    JsonMaterializer(),
    ModelMaterializer(),
)


def materializer_for(
    value: Any, step_name: str, output: str, candidates: Sequence[Materializer] = ()
) -> Materializer:
    """The first materializer (custom ones first) that can save ``value``; a container is
    saved item by item, anything else with cloudpickle and a warning."""
    from shipyard.pipelines._container_materializers import fallbacks

    def find(item: Any) -> Materializer:
        return materializer_for(item, step_name, output, candidates)

    def named(name: str) -> Materializer:
        return materializer_named(name, candidates)

    for materializer in (*candidates, *DEFAULT_MATERIALIZERS, *fallbacks(find, named)):
        if materializer.can_save(value):
            return materializer
    raise ArtifactError(  # pragma: no cover - cloudpickle takes anything
        f"Step '{step_name}' returned a {type(value).__qualname__} as output '{output}', "
        "which no materializer can save."
    )


def materializer_named(name: str, candidates: Sequence[Materializer] = ()) -> Materializer:
    from shipyard.pipelines._container_materializers import fallbacks

    def find(item: Any) -> Materializer:
        return materializer_for(item, "", "", candidates)

    def named(inner: str) -> Materializer:
        return materializer_named(inner, candidates)

    for materializer in (*candidates, *DEFAULT_MATERIALIZERS, *fallbacks(find, named)):
        if materializer.name == name:
            return materializer
    raise ArtifactError(
        f"No materializer named '{name}' is known, so the artifact cannot be read. "
        "Pass the custom materializer that wrote it in @step(materializers=[...])."
    )

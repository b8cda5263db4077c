"""What every file-backed runtime shares: where the model file is, and optional imports."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shipyard._imports import require
from shipyard.errors import InvalidInputError, ModelLoadError
from shipyard.models._signature import is_dataframe
from shipyard.models.manifest import ModelManifest, read_manifest
from shipyard.models.predictor import Predictor

__all__ = ["FileRuntime", "require", "rows", "save_booster", "single_array"]


class FileRuntime(Predictor):
    """A runtime whose model lives in one file (or folder) of the model directory.

    Constructed by ``load_model`` with the manifest it read or synthesised; constructed
    bare (a user's subclass adding pre/postprocessing), it reads ``shipyard.yaml`` from the
    model directory in ``load``.
    """

    #: Model file names tried, in order, when neither a manifest nor a file name says.
    default_files: tuple[str, ...] = ()

    def __init__(self, manifest: ModelManifest | None = None) -> None:
        self.manifest = manifest
        self.model_dir: Path | None = None

    def load(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        if self.manifest is None:
            self.manifest = read_manifest(self.model_dir)

    @property
    def method(self) -> str | None:
        return self.manifest.method if self.manifest else None

    def model_path(self) -> Path:
        """The model file inside the loaded model directory."""
        if self.model_dir is None:
            raise ModelLoadError(f"{type(self).__name__}.load() has not been called yet.")
        if self.manifest is not None and self.manifest.model_file:
            path = self.model_dir / self.manifest.model_file
            if not path.exists():
                raise ModelLoadError(
                    f"The manifest in {self.model_dir} names model_file "
                    f"{self.manifest.model_file!r}, but that file does not exist. Restore "
                    "it, or fix 'model_file' in shipyard.yaml."
                )
            return path
        for name in self.default_files:
            if (self.model_dir / name).exists():
                return self.model_dir / name
        raise ModelLoadError(
            f"No model file in {self.model_dir} for {type(self).__name__}: looked for "
            f"{', '.join(self.default_files) or 'a model_file in shipyard.yaml'}. Set "
            "'model_file' in shipyard.yaml or save the model with save_model()."
        )


def single_array(inputs: Any, what: str) -> Any:
    """The one input of a single-input model: an array or DataFrame, unwrapped from a dict.

    A dict of several 1-D (or n x 1) arrays becomes a 2-D array, columns in dict order,
    which is how tabular clients send one tensor per feature.
    """
    if is_dataframe(inputs) or isinstance(inputs, np.ndarray):
        return inputs
    if isinstance(inputs, Mapping):
        if len(inputs) == 1:
            return next(iter(inputs.values()))
        if not inputs:
            raise InvalidInputError(f"{what} got no inputs.")
        cols = [np.asarray(v) for v in inputs.values()]
        if all(c.ndim == 1 or (c.ndim == 2 and c.shape[1] == 1) for c in cols):
            try:
                return np.column_stack([c.reshape(-1) for c in cols])
            except ValueError as err:
                raise InvalidInputError(
                    f"{what} got inputs {list(inputs)} with different row counts "
                    f"({[c.shape[0] for c in cols]}); send the same number of rows for each."
                ) from err
        raise InvalidInputError(
            f"{what} takes one input (or one 1-D input per column), got "
            f"{len(inputs)} inputs: {', '.join(repr(k) for k in inputs)}."
        )
    return np.asarray(inputs)


def rows(inputs: Any, what: str) -> Any:
    """The one input as a DataFrame or a 2-D array (one row when it came as 1-D), which is
    what the booster libraries predict on."""
    x = single_array(inputs, what)
    if is_dataframe(x):
        return x
    x = np.asarray(x)
    return x.reshape(1, -1) if x.ndim == 1 else x


def save_booster(model: Any, model_dir: Path, name: str) -> str:
    """Write a booster with its own ``save_model`` as ``name``; returns the file name."""
    model.save_model(str(model_dir / name))
    return name

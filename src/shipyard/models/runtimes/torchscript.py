"""TorchScript modules (``torch.jit.save``), run on the CPU under ``torch.inference_mode``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shipyard.errors import InvalidInputError
from shipyard.models._signature import is_dataframe
from shipyard.models.runtimes._base import FileRuntime, require

__all__ = ["TorchScriptPredictor", "save"]

_PURPOSE = "TorchScript models"


@contextmanager
def _jit_is_what_we_asked_for() -> Iterator[None]:
    # torch >= 2.10 deprecates torch.jit.save/load in favour of torch.export; serving a
    # TorchScript file is exactly what this runtime is for, so that one warning is noise.
    # (Narrow on purpose: any other warning still reaches the user.)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"`torch\.jit\.(save|load)` is deprecated",
            category=DeprecationWarning,
        )
        yield


def save(model: Any, model_dir: Path) -> str:
    """Write a ``torch.jit.ScriptModule`` as ``model.pt``."""
    torch = require("torch", package="torch", extra="torch", purpose=_PURPOSE)
    name = "model.pt"
    with _jit_is_what_we_asked_for():
        torch.jit.save(model, str(model_dir / name))
    return name


class TorchScriptPredictor(FileRuntime):
    """Calls the module with one tensor, or with keyword tensors for a dict of inputs.

    Returns an array, or a dict of arrays when the module returns a tuple/list (named
    ``output-0``, ``output-1``, ...) or a dict.
    """

    supports_batching: ClassVar[bool] = True
    default_files: tuple[str, ...] = ("model.pt", "model.pth", "model.torchscript")

    def load(self, model_dir: Path) -> None:
        super().load(model_dir)
        self.torch = require("torch", package="torch", extra="torch", purpose=_PURPOSE)
        with _jit_is_what_we_asked_for():
            self.module = self.torch.jit.load(str(self.model_path()), map_location="cpu")
        self.module.eval()

    def _tensor(self, value: Any) -> Any:
        arr = np.ascontiguousarray(value.to_numpy() if is_dataframe(value) else value)
        if arr.dtype == np.float64:
            # Torch modules are float32 unless built otherwise; JSON decodes to float64.
            arr = arr.astype(np.float32)
        return self.torch.from_numpy(arr)

    def _out(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): self._out(v) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            return {f"output-{i}": self._out(v) for i, v in enumerate(value)}
        return value.detach().cpu().numpy()

    def predict(self, inputs: Any) -> Any:
        try:
            # inference_mode is thread-local, so concurrent calls from server threads are fine.
            with self.torch.inference_mode():
                if isinstance(inputs, Mapping):
                    out = self.module(**{k: self._tensor(v) for k, v in inputs.items()})
                else:
                    out = self.module(self._tensor(inputs))
        except (RuntimeError, TypeError) as err:
            raise InvalidInputError(f"The TorchScript module rejected the input: {err}") from err
        return self._out(out)

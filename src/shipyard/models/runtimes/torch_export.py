"""``torch.export`` programs (``.pt2``): PyTorch's successor to TorchScript."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from shipyard.errors import ConfigError
from shipyard.models.runtimes._base import FileRuntime, require
from shipyard.models.runtimes.torchscript import TorchScriptPredictor

__all__ = ["TorchExportPredictor", "save"]

_PURPOSE = "torch.export programs"


def save(model: Any, model_dir: Path) -> str:
    """Write a ``torch.export.ExportedProgram`` as ``model.pt2``.

    Export with a dynamic batch dimension (``dynamic_shapes={"x": {0: Dim("batch")}}``),
    or the program only accepts the example's batch size.
    """
    torch = require("torch", package="torch", extra="torch", purpose=_PURPOSE)
    if not isinstance(model, torch.export.ExportedProgram):
        raise ConfigError(
            f"format='torch-export' needs a torch.export.ExportedProgram, got "
            f"{type(model).__name__}; create one with torch.export.export(module, args)."
        )
    name = "model.pt2"
    torch.export.save(model, str(model_dir / name))
    return name


class TorchExportPredictor(TorchScriptPredictor):
    """Runs ``ExportedProgram.module()``; inputs and outputs as for TorchScript."""

    supports_batching: ClassVar[bool] = True
    default_files = ("model.pt2",)

    def load(self, model_dir: Path) -> None:
        FileRuntime.load(self, model_dir)
        self.torch = require("torch", package="torch", extra="torch", purpose=_PURPOSE)
        program = self.torch.export.load(str(self.model_path()))
        self.module = program.module()

"""The public API of shipyard.batch, pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import inspect
import subprocess
import sys

import shipyard.batch
from shipyard.batch import BatchOptions, BatchSummary


def test_public_names() -> None:
    assert shipyard.batch.__all__ == ["BatchOptions", "BatchSummary", "predict"]
    params = list(inspect.signature(shipyard.batch.predict).parameters)
    assert params[:3] == ["model_uri", "input", "output"]
    assert {"columns", "id_column", "keep_columns", "batch_size", "workers", "resume"} <= set(
        params
    )
    assert set(BatchSummary.model_fields) == {
        "rows", "rejected", "seconds", "rows_per_second", "output", "rejects", "shards",
        "shards_resumed", "workers", "nodes",
    }  # fmt: skip
    assert BatchOptions.model_config.get("extra") == "forbid"


def test_import_is_light() -> None:
    # Worker processes import the package before numpy and the model's framework.
    code = "import sys, shipyard.batch; print('numpy' in sys.modules, 'pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

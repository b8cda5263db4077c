"""A PostgreSQL table as the output, against a throwaway local cluster (a real server).

Runs where the PostgreSQL server binaries and psycopg are installed (Debian package
`postgresql`, `pip install 'shipyard[postgres]'`); skipped, saying so, elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from batch_helpers import save_custom, write_input

from shipyard.batch import predict
from shipyard.errors import PredictorError


@pytest.fixture(scope="module")
def postgres_url(postgres_server: str) -> str:
    return f"{postgres_server}/postgres"


def test_postgres_table_resume_and_rejects(
    postgres_url: str, tmp_path: Path, frame: pd.DataFrame
) -> None:
    model = save_custom(tmp_path, "Picky")
    bad = frame.copy()
    bad.loc[[640, 900], "a"] = -1.0
    src = write_input(bad, tmp_path / "in.parquet", "parquet")
    common: dict[str, Any] = {
        "columns": ["a", "b"],
        "id_column": "id",
        "keep_columns": ["city"],
        "table": "scores",
        "shard_rows": 250,
        "staging_dir": str(tmp_path / "staging"),
    }
    # The bad row in the third shard stops the job after two shards were committed...
    with pytest.raises(PredictorError, match=r"rows 500-749"):
        predict(str(model), str(src), postgres_url, **common)
    # ... then the job resumes with --on-error skip: nothing twice, nothing lost.
    summary = predict(str(model), str(src), postgres_url, resume=True, on_error="skip", **common)
    assert summary.shards_resumed == 2 and summary.rejected == 2
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        table = pd.read_sql("SELECT * FROM scores ORDER BY _row", conn)
        rejects = pd.read_sql("SELECT * FROM scores_rejects ORDER BY _row", conn)
    engine.dispose()
    good = frame.drop(index=[640, 900])
    assert list(table.columns) == ["_row", "id", "city", "prediction"]
    assert table["_row"].tolist() == good.index.tolist()
    assert table["id"].tolist() == good["id"].tolist()
    assert table["city"].tolist() == good["city"].tolist()
    np.testing.assert_allclose(table["prediction"], good["a"] + good["b"])
    assert rejects["file_row"].tolist() == [640, 900]
    assert rejects["error"].str.contains("must not be negative").all()

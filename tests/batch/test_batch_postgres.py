"""A PostgreSQL table as the output, against a throwaway local cluster (a real server).

Runs where the PostgreSQL server binaries and psycopg are installed (Debian package
`postgresql`, `pip install 'shipyard[postgres]'`); skipped, saying so, elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from batch_helpers import save_custom, write_input

from shipyard.batch import predict
from shipyard.errors import PredictorError
from shipyard.testing import free_port


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="needs psycopg: pip install 'shipyard[postgres]'")
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        pytest.skip("needs the PostgreSQL server binaries (Debian package postgresql)")
    bindir = bins[-1].parent
    data = Path(tempfile.mkdtemp(prefix="shipyard-batch-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    db = str(data / "db")
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", db, "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    start = [str(bindir / "pg_ctl"), "-D", db, "-l", str(data / "log"), "-w", "-o", options]
    subprocess.run(_as_postgres([*start, "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", db, "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


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

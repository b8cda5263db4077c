"""Bad input and rejected rows: clear errors naming file and rows; skip writes them aside."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from batch_helpers import save_custom, write_input

from shipyard.batch import predict
from shipyard.errors import ConfigError, InvalidInputError, PredictorError


def _with_bad_rows(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    bad = frame.copy()
    bad.loc[rows, "a"] = -1.0
    return bad


def test_missing_column_names_the_file(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame
) -> None:
    write_input(frame, tmp_path / "data" / "a.parquet", "parquet")
    write_input(frame.drop(columns=["c"]), tmp_path / "data" / "b.parquet", "parquet")
    with pytest.raises(InvalidInputError, match=r"b\.parquet \(all rows\) has no column 'c'"):
        predict(str(sklearn_model), str(tmp_path / "data"), str(tmp_path / "out.parquet"))


def test_unparsable_value_names_file_and_rows(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame
) -> None:
    src = write_input(frame, tmp_path / "in.csv", "csv")
    lines = src.read_text().splitlines()
    row = 700  # data row 700 is line 702 of the file (header + 1-based)
    fields = lines[row + 1].split(",")
    fields[2] = "not-a-number"
    lines[row + 1] = ",".join(fields)
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInputError) as info:
        predict(str(sklearn_model), str(src), str(tmp_path / "out.parquet"), shard_bytes=20_000)
    message = str(info.value)
    assert str(src) in message and "not-a-number" in message
    first, last = (int(x) for x in message.split("rows ")[1].split(":")[0].split("-"))
    assert first <= row <= last


def test_wrong_dtype_names_the_file(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame
) -> None:
    bad = frame.assign(b=frame["b"].astype(str))
    bad.loc[300, "b"] = "oslo"
    src = write_input(bad, tmp_path / "in.parquet", "parquet")
    with pytest.raises(InvalidInputError, match=r"in\.parquet, rows 250-499: column 'b' holds"):
        predict(
            str(sklearn_model), str(src), str(tmp_path / "out.parquet"), shard_rows=250, workers=2
        )


def test_unreadable_parquet_file(tmp_path: Path, sklearn_model: Path) -> None:
    src = tmp_path / "broken.parquet"
    src.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InvalidInputError, match=r"Cannot read Parquet file .*broken\.parquet"):
        predict(str(sklearn_model), str(src), str(tmp_path / "out.parquet"))


def test_skip_writes_rejected_rows_aside(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = save_custom(tmp_path, "Picky")
    bad_rows = [3, 4, 517, 999]
    src = write_input(_with_bad_rows(frame, bad_rows), tmp_path / "in.csv", "csv")
    out = tmp_path / "out.csv"
    summary = predict(
        str(model),
        str(src),
        str(out),
        columns=["a", "b"],
        id_column="id",
        on_error="skip",
        batch_size=128,
        shard_bytes=15_000,
    )
    assert (summary.rows, summary.rejected) == (len(frame) - 4, 4)
    result = pd.read_csv(out)
    good = frame.drop(index=bad_rows)
    assert result["id"].tolist() == good["id"].tolist()
    np.testing.assert_allclose(result["prediction"], good["a"] + good["b"])
    assert summary.rejects == str(tmp_path / "out.rejects.jsonl")
    rejects = [json.loads(line) for line in Path(summary.rejects).read_text().splitlines()]
    assert [r["row"] for r in rejects] == bad_rows
    assert all("column a must not be negative" in r["error"] for r in rejects)
    assert [r["values"]["id"] for r in rejects] == bad_rows and rejects[0]["file"] == str(src)


def test_skip_to_sqlite_writes_a_rejects_table(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = save_custom(tmp_path, "Picky")
    src = write_input(_with_bad_rows(frame, [10, 600]), tmp_path / "in.parquet", "parquet")
    url = f"sqlite:///{tmp_path / 'out.db'}"
    summary = predict(str(model), str(src), url, columns=["a"], on_error="skip", batch_size=100)
    assert summary.rejected == 2 and summary.rejects and "predictions_rejects" in summary.rejects
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT _row, file_row, error FROM predictions_rejects")).all()
        kept = conn.execute(sa.text("SELECT _row FROM predictions ORDER BY _row")).scalars().all()
    engine.dispose()
    assert [(r[0], r[1]) for r in rows] == [(10, 10), (600, 600)]
    assert kept == [i for i in range(len(frame)) if i not in (10, 600)]


def test_fail_stops_then_resume_after_the_fix(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = save_custom(tmp_path, "Picky")
    src = write_input(_with_bad_rows(frame, [800]), tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out"
    with pytest.raises(PredictorError, match=r"in\.parquet, rows 750-999: .*must not be negative"):
        predict(str(model), str(src), str(out), columns=["a"], shard_rows=250)
    # Without --resume the unfinished job is protected.
    with pytest.raises(ConfigError, match="pass --resume"):
        predict(str(model), str(src), str(out), columns=["a"], shard_rows=250)
    # The fix: skip such rows. Shards finished before the failure are kept.
    summary = predict(
        str(model),
        str(src),
        str(out),
        columns=["a"],
        shard_rows=250,
        resume=True,
        on_error="skip",
    )
    assert summary.shards_resumed == 3 and summary.rejected == 1
    assert len(pd.read_parquet(out)) == len(frame) - 1


def test_existing_output_is_not_overwritten(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame
) -> None:
    src = write_input(frame, tmp_path / "in.parquet", "parquet")
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        predict(str(sklearn_model), str(src), str(out))
    assert out.read_text() == "precious\n"
    predict(str(sklearn_model), str(src), str(out), overwrite=True)
    assert len(pd.read_csv(out)) == len(frame)
    url = f"sqlite:///{tmp_path / 'out.db'}"
    predict(str(sklearn_model), str(src), url)
    with pytest.raises(ConfigError, match="already exists"):
        predict(str(sklearn_model), str(src), url)
    predict(str(sklearn_model), str(src), url, overwrite=True)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar() == len(frame)
    engine.dispose()


def test_bad_options_are_config_errors(tmp_path: Path, sklearn_model: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        predict(str(sklearn_model), "x", "y", batch_size=0)
    with pytest.raises(ConfigError, match="model_uri or service"):
        predict(None, "x", "y")
    with pytest.raises(InvalidInputError, match="does not exist"):
        predict(str(sklearn_model), str(tmp_path / "nope.parquet"), str(tmp_path / "o.parquet"))


def test_skip_gives_up_when_every_row_is_rejected(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = save_custom(tmp_path, "Picky")
    src = write_input(frame.assign(a=-1.0), tmp_path / "in.parquet", "parquet")
    with pytest.raises(PredictorError, match=r"rejected each of the first 1000 rows .*rows 0-999"):
        predict(str(model), str(src), str(tmp_path / "out.csv"), columns=["a"], on_error="skip")


def test_invalid_options_read_without_pydantic_noise(tmp_path: Path, sklearn_model: Path) -> None:
    with pytest.raises(ConfigError) as neither:
        predict(None, str(tmp_path / "in.csv"), str(tmp_path / "out.csv"))
    assert str(neither.value) == (
        "Invalid batch options: give either model_uri or service, not both and not neither"
    )
    with pytest.raises(ConfigError) as zero:
        predict(str(sklearn_model), "in.csv", "out.csv", batch_size=0)
    assert str(zero.value) == "Invalid batch options: batch_size: Input should be greater than 0"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_skip_makes_a_bad_cell_a_row_error(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame, fmt: str
) -> None:
    # One cell that is no number: that row is rejected with the reason, the job finishes.
    bad = frame.assign(b=frame["b"].astype(str))  # a text column, as a CSV reader sees it
    bad.loc[42, "b"] = "oops"
    src = write_input(bad, tmp_path / f"in.{fmt}", fmt)
    out = tmp_path / "out.csv"
    summary = predict(
        str(sklearn_model), str(src), str(out), id_column="id", on_error="skip", batch_size=64
    )
    assert (summary.rows, summary.rejected) == (len(frame) - 1, 1)
    result = pd.read_csv(out)
    assert 42 not in result["id"].tolist() and len(result) == len(frame) - 1
    rejects = [json.loads(line) for line in Path(str(summary.rejects)).read_text().splitlines()]
    assert [r["row"] for r in rejects] == [42]
    assert "'b'" in rejects[0]["error"] and "oops" in rejects[0]["error"]
    assert not list(tmp_path.glob("*.partial"))


def test_skip_makes_a_bad_jsonl_cell_a_row_error(
    tmp_path: Path, sklearn_model: Path, frame: pd.DataFrame
) -> None:
    # JSON lines keep numbers as numbers: one string where the others are numbers broke
    # the whole read (Arrow's "changed from number to string"), not just that row.
    src = write_input(frame, tmp_path / "in.jsonl", "jsonl")
    lines = src.read_text().splitlines()
    row = json.loads(lines[700])
    row["b"] = "oops"
    lines[700] = json.dumps(row)
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    summary = predict(
        str(sklearn_model), str(src), str(out), id_column="id", on_error="skip", batch_size=64
    )
    assert (summary.rows, summary.rejected) == (len(frame) - 1, 1)
    result = pd.read_csv(out)
    assert sorted(result["id"].tolist()) == [i for i in range(len(frame)) if i != 700]
    rejects = [json.loads(line) for line in Path(str(summary.rejects)).read_text().splitlines()]
    assert [r["row"] for r in rejects] == [700]
    assert "'b'" in rejects[0]["error"] and "oops" in rejects[0]["error"]
    assert not list(tmp_path.glob("*.partial"))


def test_skip_makes_a_bad_cell_past_the_type_sample_a_row_error(
    tmp_path: Path, sklearn_model: Path
) -> None:
    # The column types of a text file are inferred from its first MiB: a bad cell after
    # it is read as a number column's cell, and failed the whole shard.
    from batch_helpers import make_frame

    frame = make_frame(30_000)
    bad_row = 29_000
    src = write_input(frame, tmp_path / "in.csv", "csv")
    assert src.stat().st_size > 1 << 20
    lines = src.read_text().splitlines()
    fields = lines[bad_row + 1].split(",")
    fields[2] = "oops"  # column b
    lines[bad_row + 1] = ",".join(fields)
    fields = lines[bad_row + 3].split(",")
    fields[1] = ""  # column a: a missing value stays NaN, not an error
    lines[bad_row + 3] = ",".join(fields)
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    summary = predict(
        str(sklearn_model), str(src), str(out), id_column="id", on_error="skip", batch_size=500
    )
    rejects = [json.loads(line) for line in Path(str(summary.rejects)).read_text().splitlines()]
    assert [r["row"] for r in rejects] == [bad_row, bad_row + 2]
    assert "'b'" in rejects[0]["error"] and "oops" in rejects[0]["error"]
    # The empty cell reached the model as NaN (which this model refuses): no parse error.
    assert "NaN" in rejects[1]["error"] and rejects[1]["values"]["a"] is None
    result = pd.read_csv(out)
    assert bad_row not in result["id"].tolist()
    assert len(result) + summary.rejected == len(frame)
    assert not list(tmp_path.glob("*.partial"))

"""Batch baselines, one per process so their memory is measured alone.

Usage: python batch_baselines.py METHOD DATA.parquet MODEL.joblib OUT.parquet
METHOD:
  chunked  stream the file in 100k-row batches, model.predict each in this one process
           (the single-core limit: no pool, scikit-learn's n_jobs left at 1)
  pandas   pandas.read_parquet the whole file, one model.predict, write the predictions
  csv      write the first N rows (N = OUT's stem suffix) as CSV for `mlflow models predict`
Prints one JSON line: rows and the seconds spent inside (wall time is taken outside).
"""

from __future__ import annotations

import json
import sys
import time

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

method, data, model_path, out = sys.argv[1:5]
t0 = time.perf_counter()
if method == "chunked":
    model = joblib.load(model_path)
    source = pq.ParquetFile(data)
    parts = []
    rows = 0
    for batch in source.iter_batches(batch_size=100_000):
        x = np.column_stack([c.to_numpy() for c in batch.columns])
        parts.append(model.predict(x))
        rows += len(x)
    pq.write_table(pa.table({"prediction": np.concatenate(parts)}), out)
elif method == "pandas":
    import pandas as pd

    model = joblib.load(model_path)
    frame = pd.read_parquet(data)
    rows = len(frame)
    frame["prediction"] = model.predict(frame.to_numpy())
    frame[["prediction"]].to_parquet(out)
elif method == "csv":
    n = int(out.rsplit("-", 1)[1].split(".")[0])
    import pyarrow.csv as pcsv

    batches, got = [], 0
    for b in pq.ParquetFile(data).iter_batches(batch_size=min(n, 100_000)):
        batches.append(b.slice(0, n - got))
        got += batches[-1].num_rows
        if got >= n:
            break
    first = pa.Table.from_batches(batches)
    pcsv.write_csv(first, out + ".tmp")
    import os

    os.replace(out + ".tmp", out)
    rows = first.num_rows
else:
    raise SystemExit(f"unknown method {method!r}")
print(json.dumps({"rows": rows, "inside_s": time.perf_counter() - t0}))

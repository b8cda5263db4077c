"""Batch baselines, one per process so their memory is measured alone.

Usage: python batch_baselines.py METHOD DATA.parquet MODEL.joblib OUT.parquet
METHOD:
  chunked-1cpu  the single-core limit: the `chunked` loop below in a process pinned to
                one CPU (sched_setaffinity) with pyarrow's CPU and I/O pools at one
                thread, so nothing runs on a second core
  chunked       stream the file in 100k-row batches, model.predict each in this one
                process (scikit-learn's n_jobs left at 1); pyarrow decodes the next
                batches on its own threads, i.e. on the second core
  pandas        pandas.read_parquet the whole file, one model.predict, write the predictions
  csv           write the first N rows (N = OUT's stem suffix) as CSV for `mlflow models predict`
Prints one JSON line: rows and the seconds spent inside (wall time is taken outside).
"""

from __future__ import annotations

import json
import os
import sys
import time

method, data, model_path, out = sys.argv[1:5]
t0 = time.perf_counter()
pinned = method == "chunked-1cpu"
if pinned:
    # Before numpy and pyarrow are imported, so no thread pool is sized for two cores.
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

if pinned:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
if method in ("chunked", "chunked-1cpu"):
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
    os.replace(out + ".tmp", out)
    rows = first.num_rows
else:
    raise SystemExit(f"unknown method {method!r}")
print(json.dumps({"rows": rows, "inside_s": time.perf_counter() - t0, "pinned": pinned}))

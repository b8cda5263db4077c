"""Write the batch benchmark's input: ROWS rows x 20 float64 columns f0..f19, Parquet.

Rows come from make_classification in chunks (the distribution the models were trained
on), so tree depths are realistic. Written to OUT.tmp then renamed: a killed run leaves
no half file behind.

Usage: python make_data.py ROWS OUT.parquet
"""

from __future__ import annotations

import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import make_classification

rows, out = int(sys.argv[1]), sys.argv[2]
chunk = 500_000
names = [f"f{i}" for i in range(20)]
schema = pa.schema([(n, pa.float64()) for n in names])
tmp = out + ".tmp"
with pq.ParquetWriter(tmp, schema) as writer:
    done, seed = 0, 1
    while done < rows:
        n = min(chunk, rows - done)
        x, _ = make_classification(n_samples=n, n_features=20, random_state=seed)
        table = pa.table({name: x[:, i] for i, name in enumerate(names)}, schema=schema)
        writer.write_table(table, row_group_size=100_000)
        done, seed = done + n, seed + 1
os.replace(tmp, out)

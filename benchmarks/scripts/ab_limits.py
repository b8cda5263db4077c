"""A/B of the serving limits (issue 10): a baseline source tree against this one, REST
(h2load --h1) and gRPC (h2load h2c) on the same generator, c=32, one row, RF model,
--workers 2, interleaved rounds (the order alternates). The runner is `_ab.py`.

    rm -rf /tmp/base && mkdir /tmp/base && git archive <baseline> src | tar -x -C /tmp/base
    BASELINE_SRC=/tmp/base/src ROUNDS=4 .venv/bin/python benchmarks/scripts/ab_limits.py
"""

import os
from pathlib import Path

import numpy as np
from _ab import prepare, run_rounds

from shipyard.testing import start_server

root = Path(os.environ.get("AB_WORK", "/tmp/shipyard-ab"))
model = prepare(root)

servers = {}
old_env = {"PYTHONPATH": os.environ["BASELINE_SRC"]}
servers["baseline"] = start_server(model, workers=2, grpc=True, env=old_env)
servers["branch"] = start_server(model, workers=2, grpc=True)
# A limit that answers 503 under c=32 is what this A/B measures, not an error.
results = run_rounds(servers, root, require_2xx=False)
for name, r in results.items():
    rest_m, grpc_m = np.mean(r["rest"]), np.mean(r["grpc"])
    ratio = grpc_m / rest_m
    print(f"{name}: REST {rest_m:.0f} req/s, gRPC {grpc_m:.0f} req/s, gRPC/REST {ratio:.2f}x")
b, m = results["branch"], results["baseline"]
rest_ratio = np.mean(b["rest"]) / np.mean(m["rest"])
grpc_ratio = np.mean(b["grpc"]) / np.mean(m["grpc"])
print(f"branch/baseline: REST {rest_ratio:.3f}x, gRPC {grpc_ratio:.3f}x")

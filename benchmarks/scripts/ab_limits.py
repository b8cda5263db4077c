"""A/B of the serving limits (issue 10): a baseline source tree against this one, REST
(h2load --h1) and gRPC (h2load h2c) on the same generator, c=32, one row, RF model,
--workers 2, interleaved rounds (the order alternates).

    rm -rf /tmp/base && mkdir /tmp/base && git archive <baseline> src | tar -x -C /tmp/base
    BASELINE_SRC=/tmp/base/src ROUNDS=4 .venv/bin/python benchmarks/scripts/ab_limits.py
"""

import json
import os
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier

import shipyard
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.testing import start_server

root = Path(os.environ.get("AB_WORK", "/tmp/shipyard-ab"))
root.mkdir(parents=True, exist_ok=True)
X = np.random.default_rng(0).normal(size=(500, 4))
y = (X[:, 0] > 0).astype(int)
model = root / "rf"
if not model.exists():
    shipyard.save_model(
        RandomForestClassifier(n_estimators=20, max_depth=6).fit(X, y), model, input_example=X[:2]
    )
rest = root / "rest.json"
rest.write_text(
    json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, 4],
                    "datatype": "FP64",
                    "data": [0.1, 0.2, 0.3, 0.4],
                }
            ]
        }
    )
)
req = pb.ModelInferRequest(model_name="rf")
t = req.inputs.add(name="input-0", datatype="FP64", shape=[1, 4])
t.contents.fp64_contents.extend([0.1, 0.2, 0.3, 0.4])
msg = req.SerializeToString()
(root / "grpc.bin").write_bytes(struct.pack(">BL", 0, len(msg)) + msg)


def h2load(url, body, headers, http1):
    argv = ["h2load", "-t1", "-c32", "-m1", "-D5", "--warm-up-time=1", "-d", str(body)]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    if http1:
        argv.append("--h1")
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=120).stdout
    ok = int(re.search(r"(\d+) succeeded", out).group(1))
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    return rps, ok


servers = {}
old_env = {"PYTHONPATH": os.environ["BASELINE_SRC"]}
servers["baseline"] = start_server(model, workers=2, grpc=True, env=old_env)
servers["branch"] = start_server(model, workers=2, grpc=True)
results = {k: {"rest": [], "grpc": []} for k in servers}
try:
    for rnd in range(int(os.environ.get("ROUNDS", "2"))):
        for name in ["baseline", "branch"] if rnd % 2 == 0 else ["branch", "baseline"]:
            s = servers[name]
            r, _ = h2load(
                f"{s.url}/v2/models/rf/infer", rest, {"content-type": "application/json"}, True
            )
            g, _ = h2load(
                f"http://127.0.0.1:{s.grpc_port}/inference.GRPCInferenceService/ModelInfer",
                root / "grpc.bin",
                {"content-type": "application/grpc", "te": "trailers"},
                False,
            )
            results[name]["rest"].append(r)
            results[name]["grpc"].append(g)
            print(rnd, name, f"REST {r:.0f} gRPC {g:.0f}", flush=True)
finally:
    for s in servers.values():
        s.stop()
for name, r in results.items():
    rest_m, grpc_m = np.mean(r["rest"]), np.mean(r["grpc"])
    ratio = grpc_m / rest_m
    print(f"{name}: REST {rest_m:.0f} req/s, gRPC {grpc_m:.0f} req/s, gRPC/REST {ratio:.2f}x")
b, m = results["branch"], results["baseline"]
rest_ratio = np.mean(b["rest"]) / np.mean(m["rest"])
grpc_ratio = np.mean(b["grpc"]) / np.mean(m["grpc"])
print(f"branch/baseline: REST {rest_ratio:.3f}x, gRPC {grpc_ratio:.3f}x")

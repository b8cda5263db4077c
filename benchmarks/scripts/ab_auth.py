"""A/B of bearer-token auth (issue 11): the same server with no token, with a token (the
client sends it), and optionally a baseline source tree with no auth code at all; REST
(h2load --h1) and gRPC (h2load h2c) on the same generator, c=32, one row, RF model,
--workers 2, interleaved rounds (the order rotates).

    ROUNDS=4 .venv/bin/python benchmarks/scripts/ab_auth.py
    # with a baseline tree (auth off must cost nothing):
    rm -rf /tmp/base && mkdir /tmp/base && git archive <baseline> src | tar -x -C /tmp/base
    BASELINE_SRC=/tmp/base/src ROUNDS=4 .venv/bin/python benchmarks/scripts/ab_auth.py
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

root = Path(os.environ.get("AB_WORK", "/tmp/shipyard-ab-auth"))
root.mkdir(parents=True, exist_ok=True)
X = np.random.default_rng(0).normal(size=(500, 4))
y = (X[:, 0] > 0).astype(int)
model = root / "rf"
if not model.exists():
    shipyard.save_model(
        RandomForestClassifier(n_estimators=20, max_depth=6).fit(X, y), model, input_example=X[:2]
    )
token = "bench-token-0123456789abcdef0123456789abcdef"
token_file = root / "token"
token_file.write_text(token)
token_file.chmod(0o600)
rest = root / "rest.json"
row = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [0.1, 0.2, 0.3, 0.4]}
rest.write_text(json.dumps({"inputs": [row]}))
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
    done = int(re.search(r"(\d+) done", out).group(1))
    status = re.search(r"status codes: (\d+) 2xx", out)
    twoxx = int(status.group(1)) if status else ok
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    if twoxx != done:
        raise SystemExit(f"{url}: only {twoxx} of {done} answers were 2xx:\n{out}")
    return rps


servers = {}
if os.environ.get("BASELINE_SRC"):
    servers["baseline"] = start_server(
        model, workers=2, grpc=True, env={"PYTHONPATH": os.environ["BASELINE_SRC"]}
    )
servers["off"] = start_server(model, workers=2, grpc=True)
servers["on"] = start_server(
    model, workers=2, grpc=True, args=["--auth-token-file", str(token_file)]
)
results = {k: {"rest": [], "grpc": []} for k in servers}
names = list(servers)
try:
    for rnd in range(int(os.environ.get("ROUNDS", "2"))):
        for name in names[rnd % len(names) :] + names[: rnd % len(names)]:
            s = servers[name]
            auth = {"authorization": f"Bearer {token}"} if name == "on" else {}
            r = h2load(
                f"{s.url}/v2/models/rf/infer",
                rest,
                {"content-type": "application/json", **auth},
                True,
            )
            g = h2load(
                f"http://127.0.0.1:{s.grpc_port}/inference.GRPCInferenceService/ModelInfer",
                root / "grpc.bin",
                {"content-type": "application/grpc", "te": "trailers", **auth},
                False,
            )
            results[name]["rest"].append(r)
            results[name]["grpc"].append(g)
            print(rnd, name, f"REST {r:.0f} gRPC {g:.0f}", flush=True)
finally:
    for s in servers.values():
        s.stop()
for name, r in results.items():
    print(f"{name}: REST {np.mean(r['rest']):.0f} req/s, gRPC {np.mean(r['grpc']):.0f} req/s")
on, off = results["on"], results["off"]
print(
    f"on/off: REST {np.mean(on['rest']) / np.mean(off['rest']):.3f}x, "
    f"gRPC {np.mean(on['grpc']) / np.mean(off['grpc']):.3f}x"
)
if "baseline" in results:
    base = results["baseline"]
    print(
        f"off/baseline: REST {np.mean(off['rest']) / np.mean(base['rest']):.3f}x, "
        f"gRPC {np.mean(off['grpc']) / np.mean(base['grpc']):.3f}x"
    )

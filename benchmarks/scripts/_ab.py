"""The A/B runner that `ab_auth.py` and `ab_limits.py` share: one RF model, one V2 REST body
and one gRPC frame (one row of four FP64s), h2load for both transports (c=32, 5 s after a
1 s warm-up), and rounds whose order rotates so no server always goes first.

Each script picks its servers and the headers each one needs; this module does the rest.
"""

import json
import os
import re
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier

import shipyard
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb

ROW = [0.1, 0.2, 0.3, 0.4]


def prepare(root: Path) -> Path:
    """Save the RF model (once) and write `rest.json` and `grpc.bin` under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    X = np.random.default_rng(0).normal(size=(500, 4))
    y = (X[:, 0] > 0).astype(int)
    model = root / "rf"
    if not model.exists():
        shipyard.save_model(
            RandomForestClassifier(n_estimators=20, max_depth=6).fit(X, y),
            model,
            input_example=X[:2],
        )
    row = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}
    (root / "rest.json").write_text(json.dumps({"inputs": [row]}))
    req = pb.ModelInferRequest(model_name="rf")
    t = req.inputs.add(name="input-0", datatype="FP64", shape=[1, 4])
    t.contents.fp64_contents.extend(ROW)
    msg = req.SerializeToString()
    (root / "grpc.bin").write_bytes(struct.pack(">BL", 0, len(msg)) + msg)
    return model


def h2load(url, body, headers, http1, require_2xx):
    """Requests per second h2load reached; with `require_2xx`, exit unless every answer
    was 2xx (a server that refuses requests fast must not look fast)."""
    argv = ["h2load", "-t1", "-c32", "-m1", "-D5", "--warm-up-time=1", "-d", str(body)]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    if http1:
        argv.append("--h1")
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=120).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    # Not "2xx == done": h2load may count an answer from the warm-up's last second in the
    # 2xx column but not in "done", so a clean run can read 15646 2xx of 15645 done.
    failed = int(re.search(r"(\d+) failed", out).group(1))
    codes = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    refused = sum(map(int, codes.groups())) if codes else 0
    if require_2xx and (failed or refused):
        raise SystemExit(f"{url}: {failed} failed, {refused} answers were not 2xx:\n{out}")
    return rps


def run_rounds(
    servers: dict,
    root: Path,
    headers_for: Callable[[str], dict[str, str]] = lambda name: {},
    require_2xx: bool = True,
) -> dict[str, dict[str, list[float]]]:
    """ROUNDS (default 2) interleaved rounds of REST then gRPC on every server; stops the
    servers at the end. Round r starts at server r mod n (with two servers: alternates)."""
    results = {k: {"rest": [], "grpc": []} for k in servers}
    names = list(servers)
    try:
        for rnd in range(int(os.environ.get("ROUNDS", "2"))):
            for name in names[rnd % len(names) :] + names[: rnd % len(names)]:
                s = servers[name]
                extra = headers_for(name)
                r = h2load(
                    f"{s.url}/v2/models/rf/infer",
                    root / "rest.json",
                    {"content-type": "application/json", **extra},
                    True,
                    require_2xx,
                )
                g = h2load(
                    f"http://127.0.0.1:{s.grpc_port}/inference.GRPCInferenceService/ModelInfer",
                    root / "grpc.bin",
                    {"content-type": "application/grpc", "te": "trailers", **extra},
                    False,
                    require_2xx,
                )
                results[name]["rest"].append(r)
                results[name]["grpc"].append(g)
                print(rnd, name, f"REST {r:.0f} gRPC {g:.0f}", flush=True)
    finally:
        for s in servers.values():
            s.stop()
    return results

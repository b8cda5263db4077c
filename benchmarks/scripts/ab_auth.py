"""A/B of bearer-token auth (issue 11): the same server with no token, with a token (the
client sends it), and optionally a baseline source tree with no auth code at all; REST
(h2load --h1) and gRPC (h2load h2c) on the same generator, c=32, one row, RF model,
--workers 2, interleaved rounds (the order rotates). The runner is `_ab.py`.

    ROUNDS=4 .venv/bin/python benchmarks/scripts/ab_auth.py
    # with a baseline tree (auth off must cost nothing):
    rm -rf /tmp/base && mkdir /tmp/base && git archive <baseline> src | tar -x -C /tmp/base
    BASELINE_SRC=/tmp/base/src ROUNDS=4 .venv/bin/python benchmarks/scripts/ab_auth.py
"""

import os
from pathlib import Path

import numpy as np
from _ab import prepare, run_rounds

from shipyard.testing import start_server

root = Path(os.environ.get("AB_WORK", "/tmp/shipyard-ab-auth"))
model = prepare(root)
token = "bench-token-0123456789abcdef0123456789abcdef"
token_file = root / "token"
token_file.write_text(token)
token_file.chmod(0o600)

servers = {}
if os.environ.get("BASELINE_SRC"):
    servers["baseline"] = start_server(
        model, workers=2, grpc=True, env={"PYTHONPATH": os.environ["BASELINE_SRC"]}
    )
servers["off"] = start_server(model, workers=2, grpc=True)
servers["on"] = start_server(
    model, workers=2, grpc=True, args=["--auth-token-file", str(token_file)]
)
results = run_rounds(
    servers, root, lambda name: {"authorization": f"Bearer {token}"} if name == "on" else {}
)
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

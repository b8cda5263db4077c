"""The serving runtimes that run in Kubernetes pods (MLServer with mlserver-sklearn,
KServe's ``kserve.ModelServer``), loading what the flavors upload.

Their pins (protobuf 5, fastapi, uvloop 0.21) conflict with the main environment, so
they live in ``.venv-k8s`` and run with ``make test-k8s`` (in CI through ``.ci/run``);
``make test`` leaves this folder out instead of failing to import them.
"""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("SHIPYARD_K8S_RUNTIMES") else ["test_*.py"]

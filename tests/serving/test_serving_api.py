"""The public API of the model server, pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import subprocess
import sys

import shipyard.serving
from shipyard import testing
from shipyard.models.predictor import Predictor
from shipyard.serving import control
from shipyard.serving.dataplane import DataPlane


def test_public_names() -> None:
    assert shipyard.serving.__all__ == ["DataPlane", "Predictor"]
    assert shipyard.serving.Predictor is Predictor
    assert shipyard.serving.DataPlane is DataPlane
    assert control.__all__ == [
        "CONTROL_SOCKET_NAME",
        "TAKEOVER_SOCKET_ENV",
        "WORKER_AUTH_TOKEN_ENV",
        "WORKER_CHANNEL_ENV",
        "WORKER_CONFIG_ENV",
        "WORKER_GRPC_FD_ENV",
        "WORKER_HTTP_FD_ENV",
        "WORKER_METRICS_ENV",
        "WORKER_MODULE",
        "recv_line",
        "send_command",
        "worker_env",
    ]
    assert testing.__all__ == [
        "MlflowServer",
        "ServerProcess",
        "async_wait_until",
        "free_port",
        "metric_value",
        "parse_metrics",
        "start_mlflow_server",
        "start_server",
        "wait_until",
    ]


def test_server_entry_point_imports_no_cli_and_no_grpc() -> None:
    # The supervisor must stay light (fast start) and never load grpc (fork-unsafe).
    code = (
        "import sys, shipyard.serving.__main__, shipyard.serving.supervisor; "
        "print(sorted(m for m in ('typer', 'rich', 'grpc', 'numpy', 'uvicorn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

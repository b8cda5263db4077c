"""The test's stand-in for a kubelet: run the model container a resource describes.

The container comes from the emulated cluster as the flavors wrote it (the ``shipyard``
ClusterServingRuntime's args with the InferenceService's ``model.env`` merged in, as
KServe does; the SeldonDeployment's own container), its ``secretKeyRef`` variables are
read from the emulated cluster's Secret, ``/mnt/models`` is the folder the storage
initializer would have filled, and it runs as a real process on 127.0.0.1 (the pod's
0.0.0.0 and ports replaced), in its own process group, killed by that group's id.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shipyard.deployers.kserve import cluster_serving_runtime
from shipyard.testing import free_port

from .emulator import Cluster

#: The pods' ports (KServe's runtime, Seldon's custom container) -> which one it is.
POD_PORTS = {"8080": "http", "9000": "http", "8081": "grpc", "9500": "grpc"}


@dataclass
class Pod:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def container(resource: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(args, env) of the model container of an InferenceService or SeldonDeployment."""
    if resource["kind"] == "InferenceService":
        model = resource["spec"]["predictor"]["model"]
        runtime = cluster_serving_runtime("img:1")["spec"]["containers"][0]
        name = resource["metadata"]["name"]
        args = [name if arg == "{{.Name}}" else arg for arg in runtime["args"]]
        return args, list(runtime.get("env") or []) + list(model.get("env") or [])
    predictor = resource["spec"]["predictors"][0]
    spec = predictor["componentSpecs"][0]["spec"]["containers"][0]
    return list(spec["args"]), list(spec.get("env") or [])


def environment(cluster: Cluster, namespace: str, env: list[dict[str, Any]]) -> dict[str, str]:
    """The variables as the kubelet sets them: values, and Secret keys by reference."""
    values: dict[str, str] = {}
    for entry in env:
        if "value" in entry:
            values[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        secret = cluster.get("v1", "secrets", namespace, ref["name"])
        assert secret is not None, f"the pod's Secret {ref['name']} does not exist"
        values[entry["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return values


@contextmanager
def run_pod(
    cluster: Cluster,
    namespace: str,
    resource: dict[str, Any],
    model_dir: Path,
    log: Path,
    http_port: int | None = None,
) -> Iterator[Pod]:
    """The resource's model container running on ``model_dir``; killed on exit."""
    args, env = container(resource)
    assert args[:2] == ["serve", "/mnt/models"], args
    ports = {"http": http_port or free_port(), "grpc": free_port()}
    argv = [sys.executable, "-m", "shipyard.cli.main"]
    for arg in args:
        if arg == "/mnt/models":
            argv.append(str(model_dir))
        elif arg == "0.0.0.0":
            argv.append("127.0.0.1")  # tests bind loopback only
        elif arg in POD_PORTS:
            argv.append(str(ports[POD_PORTS[arg]]))
        else:
            argv.append(arg)
    # Only what the pod spec says decides auth and trust, not this machine's settings.
    ours = ("SHIPYARD_SERVER_", "SHIPYARD_MODEL_", "SHIPYARD_TRUSTED")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    child_env.update(environment(cluster, namespace, env))
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=child_env, start_new_session=True
        )
    try:
        yield Pod(f"http://127.0.0.1:{ports['http']}", process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def ready_or_exited(pod: Pod, timeout: float = 180.0) -> bool:
    """True once the pod's readiness probe (no token) answers 200, False once the pod
    has exited; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if pod.process.poll() is not None:
            return False
        try:
            if httpx.get(f"{pod.url}/v2/health/ready", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, pod.output()
        time.sleep(0.2)


def wait_ready(pod: Pod, timeout: float = 180.0) -> None:
    """Until the pod's readiness probe answers 200; fails if the pod exits."""
    assert ready_or_exited(pod, timeout), pod.output()

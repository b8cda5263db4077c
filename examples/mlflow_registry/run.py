"""Train, register, deploy, promote an alias, watch the server update in place.

    .venv/bin/python examples/mlflow_registry/run.py                 # starts its own MLflow server
    .venv/bin/python examples/mlflow_registry/run.py --tracking-uri http://127.0.0.1:5000

1. A tracking server (SQLite backend, local artifact root) is started, unless one is given.
2. Two versions of an iris classifier are logged and registered as `iris`; the alias
   `champion` points at version 1.
3. The stack's `mlflow` model deployer serves `models:/iris@champion` (engine mlflow:
   MLflow's own scoring server; `--engine shipyard` for Shipyard's).
4. `champion` is moved to version 2 and the same deployment runs again: the same server
   (UUID and URL) now answers with version 2; a client kept sending meanwhile.
5. Everything this script started is stopped at the end (`--keep` leaves the model server).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

import httpx


def register_versions(tracking_uri: str) -> None:
    import mlflow
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_uri)
    x, y = load_iris(return_X_y=True)
    for c in (0.01, 1.0):  # version 1: weak, version 2: better
        with mlflow.start_run():
            mlflow.log_param("C", c)
            mlflow.sklearn.log_model(
                LogisticRegression(C=c, max_iter=500).fit(x, y),
                name="model",
                registered_model_name="iris",
                input_example=x[:2],
                pip_requirements=["scikit-learn"],
            )
    mlflow.MlflowClient().set_registered_model_alias("iris", "champion", "1")


def use_mlflow_deployer(tracking_uri: str) -> None:
    from typer.testing import CliRunner

    from shipyard.cli.main import app

    for args in (
        [
            "model-deployer",
            "register",
            "mlflow",
            "--flavor",
            "mlflow",
            "--tracking-uri",
            tracking_uri,
        ],
        [
            "stack",
            "register",
            "mlflow-stack",
            "-a",
            "default",
            "--orchestrator",
            "default",
            "-d",
            "mlflow",
            "--set",
        ],
    ):
        result = CliRunner().invoke(app, args)
        if result.exit_code != 0 and "already" not in result.output:
            raise SystemExit(result.output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="")
    parser.add_argument("--engine", choices=["mlflow", "shipyard"], default="mlflow")
    parser.add_argument("--keep", action="store_true", help="Leave the model server running.")
    args = parser.parse_args(argv)

    from shipyard.deployers.mlflow import MLFlowDeploymentConfig, MLFlowModelDeployer

    work = Path(tempfile.mkdtemp(prefix="shipyard-mlflow-example-"))
    server = None
    if not args.tracking_uri:
        print("Starting an MLflow tracking server ...", flush=True)
        from shipyard.testing import start_mlflow_server

        server = start_mlflow_server(work)
        args.tracking_uri = server.uri
    print(f"Tracking server: {args.tracking_uri}")
    try:
        register_versions(args.tracking_uri)
        use_mlflow_deployer(args.tracking_uri)
        deployer = MLFlowModelDeployer.get_active_model_deployer()
        config = MLFlowDeploymentConfig(
            registry_model_name="iris",
            alias="champion",
            engine=args.engine,
            pipeline_name="mlflow_registry",
            pipeline_step_name="deploy",
        )
        rows = [[5.9, 3.0, 4.2, 1.5], [6.3, 2.8, 5.1, 1.5]]
        service = deployer.deploy_model(config, replace=True, timeout=300)
        url = f"{service.endpoint.url}/invocations"
        auth = service.request_headers()  # engine shipyard: the server's bearer token
        first = httpx.post(url, json={"inputs": rows}, headers=auth, timeout=60).json()
        print(f"v{service.model_version} at {url}: {first}  (uuid {service.uuid})")

        from mlflow import MlflowClient

        MlflowClient(args.tracking_uri).set_registered_model_alias("iris", "champion", "2")
        stop, answered, failed = threading.Event(), [0], [0]

        def keep_asking() -> None:
            with httpx.Client(timeout=60, headers=auth) as client:
                while not stop.is_set():
                    try:
                        ok = client.post(url, json={"inputs": rows}).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if ok:
                        answered[0] += 1
                    else:
                        failed[0] += 1

        asker = threading.Thread(target=keep_asking, daemon=True)
        asker.start()
        updated = deployer.deploy_model(config, replace=True, timeout=300)
        stop.set()
        asker.join(timeout=60)
        second = httpx.post(url, json={"inputs": rows}, headers=auth, timeout=60).json()
        print(
            f"v{updated.model_version} at {updated.endpoint.url}/invocations: {second}  "
            f"(uuid {updated.uuid}, same server: {updated.uuid == service.uuid})"
        )
        print(f"During the update: {answered[0]} answered, {failed[0]} failed.")
        if args.keep:
            print(f"Stop it with: shipyard model-deployer models delete {service.uuid} --yes")
        else:
            deployer.delete_model_server(service.uuid)
    finally:
        if server is not None:
            server.stop(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())

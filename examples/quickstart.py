"""Quickstart (what `make run` executes): train, save, deploy locally, predict, inspect.

Uses the active stack of $SHIPYARD_HOME (default ~/.shipyard): a fresh home has a
`default` stack whose model deployer runs model servers as local background processes.
Running it again updates the same server in place (continuous deployment): same UUID,
same URL. The server keeps running after this script ends.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.config import get_settings
from shipyard.deployers import ModelDeployer
from shipyard.deployers.local import LocalDeploymentConfig


def shipyard_cli(*args: str) -> None:
    """Run a `shipyard` command as a user would, and show it."""
    print(f"\n$ shipyard {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "shipyard.cli.main", *args], check=True)


def main() -> None:
    # 1. Train a small model.
    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target)
    accuracy = model.score(data.data, data.target)
    print(f"Trained {type(model).__name__} on iris (accuracy {accuracy:.3f})")

    # 2. Save it as a model directory (format, signature and example in shipyard.yaml).
    model_dir = get_settings().home.expanduser() / "examples" / "iris-model"
    shipyard.save_model(model, model_dir, input_example=data.data[:2], overwrite=True)
    print(f"Saved the model to {model_dir}")

    # 3. Deploy it through the active stack's model deployer (the docs' API).
    deployer = ModelDeployer.get_active_model_deployer()
    config = LocalDeploymentConfig(
        model_uri=str(model_dir),
        model_name="iris",
        pipeline_name="quickstart",
        pipeline_step_name="deploy",
        replicas=1,
    )
    print(f"Deploying with the model deployer '{deployer.name}' ({deployer.flavor}) ...")
    service = deployer.deploy_model(config, replace=True, timeout=300)
    print(
        f"Model server {service.uuid} is {service.status.state.value} at {service.prediction_url}"
    )

    # 4. Predictions: through the Service object, and with plain HTTP requests.
    rows = data.data[[0, 60, 120]]
    print(f"\nservice.predict({rows.tolist()}) -> {service.predict(rows).tolist()}")
    v2_request = {
        "inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": rows[0].tolist()}
        ]
    }
    # The server wants its bearer token (a 0600 file in its run dir; `describe` names it).
    auth = service.request_headers()
    answer = httpx.post(
        str(service.prediction_url), json=v2_request, headers=auth, timeout=30
    ).json()
    print(f"POST {service.prediction_url}\n  {json.dumps(v2_request)}\n  -> {json.dumps(answer)}")
    base = service.endpoint.url
    answer = httpx.post(
        f"{base}/invocations", json={"inputs": rows.tolist()}, headers=auth, timeout=30
    ).json()
    print(f"POST {base}/invocations -> {json.dumps(answer)}")

    # 5. What the registry says.
    shipyard_cli("model-deployer", "models", "list")
    shipyard_cli("model-deployer", "models", "describe", service.uuid)

    print(
        "\nThe model server keeps running. Stop it with:\n"
        f"  .venv/bin/shipyard model-deployer models stop {service.uuid}\n"
        "or remove it with:\n"
        f"  .venv/bin/shipyard model-deployer models delete {service.uuid} --yes"
    )


if __name__ == "__main__":
    main()

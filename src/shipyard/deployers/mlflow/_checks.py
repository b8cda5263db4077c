"""What the ``mlflow`` flavor refuses before it fetches or starts anything: an engine that
cannot run here (MLflow missing, env_manager tools, an exposed MLflow server), a remote
model nobody trusted, an MLflow model no engine can load."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from shipyard.deployers.mlflow.config import MLFlowDeploymentConfig
from shipyard.deployers.mlflow.service import mlflow_environment
from shipyard.errors import ConfigError, DeploymentError, MissingDependencyError

__all__ = ["check_engine", "check_flavor", "check_remote_trust"]


def check_engine(config: MLFlowDeploymentConfig, host: str) -> None:
    """Refuse what cannot run here before anything is fetched or started."""
    import importlib.util

    from shipyard.serving.auth import is_loopback

    if importlib.util.find_spec("mlflow") is None:
        raise MissingDependencyError("mlflow", "mlflow", "the mlflow model deployer")
    if config.engine == "mlflow" and not is_loopback(host) and not config.insecure:
        raise ConfigError(
            f"Refusing to serve on {host} with engine: mlflow: MLflow's scoring server checks "
            "no token, so anyone who can reach it could call your model. Use engine: shipyard "
            "(it requires a bearer token), bind 127.0.0.1, or pass --insecure (insecure: "
            "true) if the network in front of it controls access."
        )
    if config.mlserver:
        raise ConfigError(
            "mlserver: true (Seldon MLServer) is not supported by the mlflow flavor; use "
            "engine: shipyard for the V2 protocol, or the kserve/seldon flavors."
        )
    if config.engine == "shipyard" and config.env_manager != "local":
        raise ConfigError(
            f"env_manager: {config.env_manager} needs engine: mlflow; engine: shipyard runs "
            "in this environment (env_manager: local)."
        )
    # What MLflow runs to build the environment (MLflow 3: uv, or pyenv for the Python
    # of virtualenv's `python -m venv`), looked up on the PATH the server will get.
    tool, install = {
        "uv": ("uv", "pip install uv"),
        "virtualenv": ("pyenv", "install it: https://github.com/pyenv/pyenv#installation"),
    }.get(config.env_manager, ("", ""))
    if tool and shutil.which(tool, path=mlflow_environment("")["PATH"]) is None:
        raise ConfigError(
            f"env_manager: {config.env_manager} needs {tool} on PATH ({install}), or use "
            "env_manager: local."
        )


def check_remote_trust(uri: str, model_dir: Path, config: MLFlowDeploymentConfig) -> None:
    """The servers load the local copy, so the remote URI's trust rule is applied here to
    what was fetched (as the local flavor does): a model from http(s), s3, ... whose
    loading runs code (an MLflow pyfunc, a pickle) needs ``trusted``, a pinned
    ``sha256`` or an allow-listed prefix. MLflow URIs go through the user's own tracking
    server (their registry: their decision) and local paths are their own choice."""
    from shipyard.models._detect import detect_model
    from shipyard.models._trust import check_trust
    from shipyard.models._uri import is_local_uri

    if is_local_uri(uri):
        return  # the user's own choice; the engine's checks name what is wrong with it
    check_trust(
        uri, model_dir, detect_model(model_dir)[1], trusted=config.trusted, sha256=config.sha256
    )


def check_flavor(model_dir: Path, engine: str, uri: str) -> None:
    """Both engines load MLflow models as pyfunc: one without that flavor is refused."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        if engine == "mlflow":
            raise DeploymentError(
                f"{uri} is not an MLflow model (no MLmodel file in {model_dir}); engine "
                "mlflow serves MLflow models only: use engine: shipyard, or the local flavor."
            )
        return
    try:
        flavors = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors", {})
    except (OSError, yaml.YAMLError) as err:
        raise DeploymentError(f"Cannot read the MLmodel file of {uri}: {err}") from err
    if "python_function" not in flavors:
        raise DeploymentError(
            f"The MLflow model {uri} has the flavor(s) {', '.join(flavors) or '(none)'} but no "
            f"python_function flavor, which engine {engine} needs to load it; log it with "
            "a flavor that adds python_function (mlflow.sklearn, mlflow.pyfunc, ...)."
        )

"""``mlflow_model_registry_deployer_step``: deploy a registered MLflow model version."""

from __future__ import annotations

from typing import Any

from shipyard.errors import DeploymentError
from shipyard.pipelines import StepContext, step
from shipyard.services import Service

__all__ = ["mlflow_model_registry_deployer_step"]


@step(enable_cache=False)
def mlflow_model_registry_deployer_step(
    registry_model_name: str,
    registry_model_version: str = "",
    registry_model_stage: str = "",
    alias: str = "",
    model_name: str = "",
    replace_existing: bool = True,
    timeout: float = 300.0,
    config: dict[str, Any] | None = None,
    *,
    context: StepContext,
) -> Service:
    """Deploy a version of ``registry_model_name`` (by version, alias or stage; the latest
    with none) through the active stack's ``mlflow`` model deployer.

    Run again after the registry moved (a new version, an alias promoted), it updates the
    same server in place: same UUID and URL, the old version serving until the new one
    answers. ``config`` holds other MLFlowDeploymentConfig fields (``engine``, ``workers``).
    Never cached: which version an alias names is the registry's state, not an input.
    """
    deployer = context.model_deployer
    if deployer.flavor != "mlflow":
        raise DeploymentError(
            f"mlflow_model_registry_deployer_step needs an mlflow model deployer; the active "
            f"stack's is '{deployer.name}' ({deployer.flavor}). Register one: `shipyard "
            "model-deployer register mlflow --flavor mlflow --tracking-uri URI`."
        )
    service: Service = deployer.deploy_model(
        {
            **(config or {}),
            "registry_model_name": registry_model_name,
            "registry_model_version": registry_model_version,
            "registry_model_stage": registry_model_stage,
            "alias": alias,
            "model_name": model_name or registry_model_name,
            "pipeline_name": context.pipeline_name,
            "pipeline_step_name": context.step_name,
            "pipeline_run_id": context.run_id,
        },
        replace=replace_existing,
        timeout=timeout,
    )
    context.add_metadata(
        service_uuid=service.uuid,
        prediction_url=service.prediction_url,
        model_version=service.model_version,
    )
    return service

"""``model_deployer_step`` and ``prediction_service_loader``: model servers from steps."""

from __future__ import annotations

from typing import Any

from shipyard.errors import DeploymentError, ServiceNotFoundError
from shipyard.pipelines import Artifact, StepContext, step
from shipyard.services import Service

__all__ = ["model_deployer_step", "prediction_service_loader"]


@step(enable_cache=False)
def model_deployer_step(
    model: Artifact,
    deploy_decision: bool,
    model_name: str = "model",
    timeout: float = 300.0,
    config: dict[str, Any] | None = None,
    dry_run: bool = False,
    *,
    context: StepContext,
) -> Service | None:
    """Deploy ``model`` (a model directory artifact) through the active model deployer.

    With a yes, deploys with ``replace=True``: the server this pipeline and step already
    run for ``model_name`` is updated in place (same UUID and URL); if the new model
    fails, the previous one keeps serving and the step fails with the cause. With a no,
    makes sure the last good server of this pipeline is running and returns it.
    ``config`` holds flavor-specific fields (e.g. ``workers``, ``port``, ``replicas``).
    With ``dry_run``, prints what would be applied (Kubernetes: the manifests), records
    it in the step's metadata, deploys nothing and returns None.
    Never cached: a server is live state, not a value.
    """
    deployer = context.model_deployer
    values = {
        **(config or {}),
        "model_uri": model.uri,
        "model_name": model_name,
        "pipeline_name": context.pipeline_name,
        "pipeline_step_name": context.step_name,
        "pipeline_run_id": context.run_id,
    }
    if dry_run:
        import yaml

        manifests = deployer.render_deployment(values)
        print(yaml.safe_dump_all(manifests, sort_keys=False).rstrip())
        context.add_metadata(deployed=False, dry_run=True, manifests=manifests)
        return None
    if deploy_decision:
        service: Service = deployer.deploy_model(values, replace=True, timeout=timeout)
        context.add_metadata(
            deployed=True, service_uuid=service.uuid, prediction_url=service.prediction_url
        )
        return service
    existing = deployer.find_model_server(
        pipeline_name=context.pipeline_name,
        pipeline_step_name=context.step_name,
        model_name=model_name,
    )
    if not existing:
        raise DeploymentError(
            f"The deployment trigger said no, and pipeline '{context.pipeline_name}' has no "
            f"model server for model '{model_name}' from step '{context.step_name}' to fall "
            "back on. Run it with a model that passes the trigger (or lower its threshold)."
        )
    # Prefer one that answers now; a stopped one is started again.
    existing.sort(key=lambda s: not s.is_running)
    service = existing[0]
    if not service.is_running:
        deployer.start_model_server(service.uuid, timeout=timeout)
        service = deployer.get_model_server(service.uuid)
    context.add_metadata(
        deployed=False, service_uuid=service.uuid, prediction_url=service.prediction_url
    )
    return service


@step(enable_cache=False)
def prediction_service_loader(
    pipeline_name: str,
    step_name: str = "model_deployer_step",
    model_name: str | None = None,
    running: bool | None = True,
) -> Service:
    """The model server deployed by ``pipeline_name``'s step ``step_name`` (and model
    ``model_name``, when given); ``running`` True/False filters on its state, None takes
    either."""
    from shipyard.pipelines import get_step_context

    deployer = get_step_context().model_deployer
    found = deployer.find_model_server(
        pipeline_name=pipeline_name,
        pipeline_step_name=step_name,
        model_name=model_name,
        running=running,
    )
    if not found:
        state = {True: "running ", False: "stopped ", None: ""}[running]
        model = f", model '{model_name}'" if model_name else ""
        raise ServiceNotFoundError(
            f"No {state}model server was deployed by pipeline '{pipeline_name}', step "
            f"'{step_name}'{model}. See `shipyard model-deployer models list`."
        )
    return found[0]

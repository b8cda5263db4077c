"""``deployment_trigger``: should this run's model be deployed?"""

from __future__ import annotations

from typing import Any

from shipyard.pipelines import StepContext, step

__all__ = ["deployment_trigger"]


def _deployed_metric(context: StepContext, model_name: str | None) -> tuple[float, str] | None:
    """The metric recorded by the run whose model this pipeline has deployed, if any."""
    from shipyard.pipelines import RunNotFoundError, get_run

    servers = context.model_deployer.find_model_server(
        pipeline_name=context.pipeline_name, model_name=model_name
    )
    for server in servers:
        run_id = server.config.pipeline_run_id
        if not run_id:
            continue
        try:
            run = get_run(run_id)
        except RunNotFoundError:
            continue
        decision = run.metadata.get("deployment_decision")
        if isinstance(decision, dict) and isinstance(decision.get("metric"), int | float):
            return float(decision["metric"]), f"{server.uuid} (run {run_id[:8]})"
    return None


@step(enable_cache=False)
def deployment_trigger(
    metric: float,
    threshold: float = 0.9,
    higher_is_better: bool = True,
    beat_deployed: bool = False,
    model_name: str | None = None,
    *,
    context: StepContext,
) -> bool:
    """Deploy when ``metric`` reaches ``threshold`` (at least, or at most when
    ``higher_is_better`` is False).

    With ``beat_deployed``, the metric must also be no worse than that of the model this
    pipeline already has deployed (found through the active model deployer, optionally
    narrowed to ``model_name``), so a worse run leaves the better model serving. The
    decision is recorded on the run as ``deployment_decision``.
    """
    value = float(metric)
    passes = value >= threshold if higher_is_better else value <= threshold
    comparison = ">=" if higher_is_better else "<="
    reason = (
        f"{value:.4g} {comparison} threshold {threshold:.4g}"
        if passes
        else f"{value:.4g} misses the threshold {threshold:.4g} ({comparison})"
    )
    decision: dict[str, Any] = {"metric": value, "threshold": threshold}
    if passes and beat_deployed:
        deployed = _deployed_metric(context, model_name)
        if deployed is not None:
            baseline, source = deployed
            decision["deployed_metric"] = baseline
            passes = value >= baseline if higher_is_better else value <= baseline
            reason = (
                f"{value:.4g} is no worse than the deployed model's {baseline:.4g} "
                f"(server {source})"
                if passes
                else f"{value:.4g} is worse than the deployed model's {baseline:.4g} "
                f"(server {source}); it keeps serving"
            )
    decision["deploy"] = passes
    decision["reason"] = ("deploy: " if passes else "keep: ") + reason
    context.add_run_metadata(deployment_decision=decision)
    context.add_metadata(**decision)
    return passes

"""``shipyard kserve runtime [--apply]``: the ``shipyard`` ClusterServingRuntime."""

from __future__ import annotations

import typer

from shipyard.cli._shared import OutputFormat, OutputOption, open_store, print_manifests

__all__ = ["kserve"]

kserve = typer.Typer(help="KServe helpers for the kserve model deployer.", no_args_is_help=True)


@kserve.command("runtime")
def runtime(
    image: str = typer.Option(
        "", "--image", help="Image with shipyard[serve] (default: the deployer's --image)."
    ),
    apply: bool = typer.Option(
        False, "--apply", help="Create or update it in the active kserve deployer's cluster."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Print (or --apply) the ClusterServingRuntime that runs `shipyard serve` for custom
    predictors."""
    from shipyard.cli._deployer import active_model_deployer
    from shipyard.deployers.kserve import KServeModelDeployer, cluster_serving_runtime
    from shipyard.errors import StackError

    if image and not apply:
        print_manifests([cluster_serving_runtime(image)], output)
        return
    with open_store() as store:
        deployer = active_model_deployer(store)
        if not isinstance(deployer, KServeModelDeployer):
            raise StackError(
                f"The active model deployer '{deployer.name}' is not a kserve one; activate "
                "a stack with one, or give --image to print the runtime."
            )
        if apply:
            deployer.apply_serving_runtime(image)
            typer.echo(
                f"ClusterServingRuntime '{deployer.settings.runtime_name}' applied to "
                f"{deployer.client().host}."
            )
            return
        print_manifests([deployer.serving_runtime(image)], output)

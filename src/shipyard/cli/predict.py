"""``shipyard predict NAME_OR_UUID --data JSON|@FILE``: one request to a model server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shipyard.cli._data import read_data
from shipyard.cli._shared import OutputFormat, PredictionsOutputOption, print_predictions
from shipyard.errors import ServiceNotFoundError

if TYPE_CHECKING:
    from shipyard.deployers.base import ModelDeployer
    from shipyard.services import Service

__all__ = ["predict"]


def _find(deployer: ModelDeployer, name_or_uuid: str) -> Service:
    from shipyard.deployers.base import AmbiguousUUIDError

    by_name = deployer.find_model_server(model_name=name_or_uuid)
    if not by_name:
        try:
            return deployer.get_model_server(name_or_uuid)
        except AmbiguousUUIDError:
            raise
        except ServiceNotFoundError:
            raise ServiceNotFoundError(
                f"No model server named or with UUID '{name_or_uuid}'. "
                "See `shipyard model-deployer models list`."
            ) from None
    running = [s for s in by_name if s.is_running] or by_name
    if len(running) > 1:
        uuids = ", ".join(s.uuid for s in running)
        raise ServiceNotFoundError(
            f"Several model servers serve '{name_or_uuid}' ({uuids}); give a UUID instead."
        )
    return running[0]


def predict(
    name_or_uuid: str = typer.Argument(..., help="Model name or model server UUID (prefix)."),
    data: str = typer.Option(
        ...,
        "--data",
        help="Rows, records, columns, MLflow dataframe_split/records, a V2 request, "
        "@FILE.json or @FILE.csv.",
    ),
    output: OutputFormat = PredictionsOutputOption,
) -> None:
    """Send one prediction request and print the answer as JSON."""
    from shipyard.cli._deployer import active_model_deployer
    from shipyard.cli._shared import open_store

    payload = read_data(data)
    with open_store() as store:
        service = _find(active_model_deployer(store), name_or_uuid)
    result = service.predict(payload)
    if not isinstance(result, dict):
        result = {"predictions": result.tolist() if hasattr(result, "tolist") else result}
    print_predictions(result, output)

"""``shipyard predict NAME_OR_UUID --data JSON|@FILE``: one request to a model server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from shipyard.cli._shared import print_json, read_json_argument
from shipyard.errors import ServiceNotFoundError

if TYPE_CHECKING:
    from shipyard.deployers.base import ModelDeployer
    from shipyard.services import Service

__all__ = ["predict"]


def _read_data(data: str) -> Any:
    return read_json_argument(
        data, "request data", "rows like '[[1, 2, 3]]', a V2 request like '{\"inputs\": [...]}'"
    )


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
        "-d",
        help='JSON rows like [[1, 2, 3]], a V2 request {"inputs": [...]}, or @FILE.',
    ),
) -> None:
    """Send one prediction request and print the answer as JSON."""
    from shipyard.cli._deployer import active_model_deployer
    from shipyard.cli._shared import open_store

    payload = _read_data(data)
    with open_store() as store:
        service = _find(active_model_deployer(store), name_or_uuid)
    result = service.predict(payload)
    if not isinstance(result, dict):
        result = {"predictions": result.tolist() if hasattr(result, "tolist") else result}
    print_json(result)

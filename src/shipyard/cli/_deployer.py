"""The active model deployer and how model servers are shown, for the CLI groups."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.deployers.base import ModelDeployer
    from shipyard.services import Service
    from shipyard.store import Store

__all__ = [
    "active_model_deployer",
    "hide_credentials",
    "named_server",
    "resolve_server",
    "service_row",
    "service_summary",
]


def hide_credentials(value: Any) -> Any:
    """``s3://key:secret@bucket/m`` -> ``s3://***@bucket/m``; other values unchanged
    (the one rule: ``shipyard._redact``)."""
    from shipyard._redact import mask_credentials

    return mask_credentials(value) if isinstance(value, str) else value


def active_model_deployer(store: Store) -> ModelDeployer:
    """The active stack's model deployer, or an error naming the commands that add one."""
    from shipyard.deployers.base import ModelDeployer

    deployer: ModelDeployer = ModelDeployer.get_active_model_deployer(store)
    return deployer


@contextlib.contextmanager
def named_server(name_or_uuid: str) -> Iterator[tuple[ModelDeployer, str]]:
    """For the block: the active model deployer, its store open, and the full UUID of the
    model server a user named (``resolve_server``)."""
    from shipyard.cli._shared import open_store

    with open_store() as store:
        deployer = active_model_deployer(store)
        yield deployer, resolve_server(deployer, name_or_uuid)


def resolve_server(deployer: ModelDeployer, name_or_uuid: str) -> str:
    """The full UUID of the model server a user named: a UUID (or unique prefix) first,
    else the one server of that model name (ZenML users name servers by model)."""
    from shipyard.deployers.base import AmbiguousUUIDError
    from shipyard.errors import ServiceNotFoundError

    try:
        return deployer.resolve_uuid(name_or_uuid)
    except AmbiguousUUIDError:
        raise
    except ServiceNotFoundError:
        if not name_or_uuid.strip():
            raise  # an empty name matches nothing either: the UUID error says what to give
    records = deployer.store.find_services(deployer_id=deployer.id, model_name=name_or_uuid)
    if len(records) == 1:
        return records[0].uuid
    if not records:
        raise ServiceNotFoundError(
            f"No model server named or with UUID '{name_or_uuid}'; see "
            "`shipyard model-deployer models list`."
        )
    uuids = ", ".join(r.uuid[:8] for r in records)
    raise ServiceNotFoundError(
        f"{len(records)} model servers serve '{name_or_uuid}' ({uuids}); give a UUID prefix."
    )


def service_row(service: Service) -> dict[str, Any]:
    config = service.config
    return {
        "uuid": service.uuid,
        "state": service.status.state.value,
        "flavor": service.flavor,
        "pipeline_name": config.pipeline_name,
        "pipeline_step_name": config.pipeline_step_name,
        "pipeline_run_id": config.pipeline_run_id,
        "model_name": config.model_name,
        "model_uri": hide_credentials(config.model_uri),
        "model_version": service.model_version,
        "prediction_url": service.prediction_url,
        "last_error": service.status.last_error,
    }


def service_summary(deployer: ModelDeployer, service: Service) -> dict[str, Any]:
    """Everything ``describe`` shows: the config (secrets never), status and info."""
    from pydantic import SecretStr

    config = {
        key: "**********"
        if isinstance(getattr(service.config, key), SecretStr)
        else hide_credentials(value)
        for key, value in service.config.model_dump(mode="json").items()
    }
    return {
        "uuid": service.uuid,
        "flavor": service.flavor,
        "state": service.status.state.value,
        "admin_state": service.admin_state.value,
        "last_error": hide_credentials(service.status.last_error),
        # A change recorded but not yet confirmed (under way, or found interrupted).
        "pending_change": None
        if service.intent is None
        else hide_credentials(service.intent.describe()),
        "prediction_url": service.prediction_url,
        "model_version": service.model_version,
        "config": config,
        "info": {
            key: hide_credentials(value)
            for key, value in deployer.get_model_server_info(service).items()
        },
    }

"""A deployment config's way in: validated as the flavor's class, and on a redeploy
merged with the running server's (an omitted field keeps its value)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shipyard.errors import DeploymentError
from shipyard.services.service import ServiceConfig
from shipyard.stack.flavor import describe_validation_errors

__all__ = ["coerce_config", "keep_omitted"]


def coerce_config(
    config: ServiceConfig | dict[str, Any], cls: type[ServiceConfig], flavor: str
) -> ServiceConfig:
    """``config`` as ``cls`` (the ``flavor`` deployer's ``DEPLOYMENT_CONFIG``); a config
    that does not fit is a DeploymentError naming the fields."""
    if isinstance(config, cls):
        return config
    # Only the fields given: an omitted one must stay "omitted" (see ``keep_omitted``).
    data = config.model_dump(exclude_unset=True) if isinstance(config, ServiceConfig) else config
    try:
        return cls.model_validate(dict(data))
    except ValidationError as err:
        raise DeploymentError(
            f"The deployment config does not fit the '{flavor}' model deployer "
            f"({cls.__name__}): {describe_validation_errors(cls, err)}"
        ) from err


def keep_omitted(current: ServiceConfig, new: ServiceConfig) -> ServiceConfig:
    """``new`` with every field its caller did not give taken from ``current``: on a
    redeploy an omitted option means "keep it", never "back to the default" (which would
    turn a model update into a restart, and an outage)."""
    if type(current) is not type(new):
        return new
    given = new.model_fields_set
    merged = {
        key: getattr(new, key) if key in given else getattr(current, key)
        for key in type(new).model_fields
    }
    # Validated from all fields: what was kept counts as given now, for the next merge.
    return type(new).model_validate(merged)

"""How a stack component, a stack and a setting are written: their rows, new ids, the
configuration as JSON. One definition for ``Store`` and for the default stack a fresh
store is given (``_migrate``), each inside its own transaction (``conn``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from shipyard.store import _schema as t

__all__ = ["configuration_json", "insert_component", "insert_stack", "set_setting"]


def configuration_json(configuration: Mapping[str, Any]) -> str:
    """A component's configuration as stored (sorted keys: equal configs, equal text)."""
    return json.dumps(dict(configuration), sort_keys=True)


def insert_component(
    conn: sa.Connection, name: str, type: str, flavor: str, configuration: Mapping[str, Any]
) -> str:
    """A new component's row; its id."""
    component_id = str(uuid.uuid4())
    conn.execute(
        t.components.insert().values(
            id=component_id,
            name=name,
            type=type,
            flavor=flavor,
            configuration=configuration_json(configuration),
        )
    )
    return component_id


def insert_stack(conn: sa.Connection, name: str, component_ids: Mapping[str, str]) -> str:
    """A new stack's row and one membership row per component (type -> id); its id."""
    stack_id = str(uuid.uuid4())
    conn.execute(t.stacks.insert().values(id=stack_id, name=name))
    for component_type, component_id in component_ids.items():
        conn.execute(
            t.stack_components.insert().values(
                stack_id=stack_id, type=component_type, component_id=component_id
            )
        )
    return stack_id


def set_setting(conn: sa.Connection, key: str, value: str) -> None:
    conn.execute(t.settings.delete().where(t.settings.c.key == key))
    conn.execute(t.settings.insert().values(key=key, value=value))

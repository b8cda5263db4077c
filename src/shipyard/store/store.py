"""The metadata store: components, stacks, custom flavors and the service registry.

Every method is one transaction. Writes on SQLite take the write lock at BEGIN (see
``_engine``), so two processes writing at once both succeed, one after the other.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shipyard.config import Settings, get_settings
from shipyard.errors import StackError, StoreError, StoreUnwritableError
from shipyard.store import _schema as t
from shipyard.store._engine import WRITE_OPTION, is_sqlite
from shipyard.store._locks import named_lock
from shipyard.store._migrate import ACTIVE_STACK
from shipyard.store._open import open_engine, prepare_home
from shipyard.store._records import (
    ComponentRecord,
    FlavorSourceRecord,
    ServiceRecord,
    StackRecord,
)
from shipyard.store._rows import configuration_json, insert_component, insert_stack, set_setting
from shipyard.store._safety import database_error, sqlite_path

__all__ = ["Store"]

_SERVICE_FILTERS = (
    "uuid",
    "deployer_id",
    "flavor",
    "pipeline_name",
    "pipeline_step_name",
    "pipeline_run_id",
    "model_name",
    "model_uri",
)


class Store:
    """Open with :meth:`open`; pass it to whatever needs it (nothing global)."""

    def __init__(
        self,
        engine: Engine,
        lock_dir: Path | None,
        settings: Settings,
        read_only: StoreUnwritableError | None = None,
    ) -> None:
        self._engine = engine
        self._lock_dir = lock_dir
        #: The settings this store was opened from (home, services dir, ...).
        self.settings = settings
        #: Why this store was opened read-only (a read-only file or folder, a full disk);
        #: None when it can be written. Every write then raises this error.
        self.read_only = read_only
        self._path = sqlite_path(settings.database_url)

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings | None = None) -> Store:
        """Open (creating, migrating and bootstrapping when needed) the configured store;
        read-only when nothing can be written (``read_only`` says why)."""
        settings = settings or get_settings()
        lock_dir = prepare_home(settings)
        engine, read_only = open_engine(settings, lock_dir)
        return cls(engine, lock_dir, settings, read_only)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 600.0) -> Iterator[None]:
        """A lock shared by every process using this store (e.g. one deploy per model)."""
        if self.read_only is not None:
            yield  # nobody can change the registry now: there is nothing to take turns on
            return
        with named_lock(self._engine, self._lock_dir, name, timeout):
            yield

    @contextlib.contextmanager
    def transaction(self, write: bool = False) -> Iterator[sa.Connection]:
        """One transaction on this store's engine, its failures as ``StoreError``.

        ``write=True`` takes SQLite's write lock up front (see ``_engine``). Every table
        of the database is the store's; other layers (pipeline runs) write through this.
        """
        if write and self.read_only is not None:
            raise StoreUnwritableError(str(self.read_only))
        options = {WRITE_OPTION: True} if write and is_sqlite(self._engine) else {}
        try:
            with self._engine.connect().execution_options(**options) as conn, conn.begin():
                yield conn
        except sa.exc.IntegrityError as err:
            raise StoreError(f"The store refused a write: {err.orig}") from err
        except sa.exc.DBAPIError as err:
            raise database_error(err, self._path, self.url) from err

    # -- custom flavors ------------------------------------------------------------------

    def add_flavor_source(self, name: str, type: str, source: str) -> FlavorSourceRecord:
        with self.transaction(write=True) as conn:
            where = (t.flavors.c.name == name) & (t.flavors.c.type == type)
            conn.execute(t.flavors.delete().where(where))
            conn.execute(t.flavors.insert().values(name=name, type=type, source=source))
        return FlavorSourceRecord(name=name, type=type, source=source)

    def list_flavor_sources(self, type: str | None = None) -> list[FlavorSourceRecord]:
        query = sa.select(t.flavors.c.name, t.flavors.c.type, t.flavors.c.source)
        if type is not None:
            query = query.where(t.flavors.c.type == type)
        with self.transaction() as conn:
            rows = conn.execute(query.order_by(t.flavors.c.name)).mappings().all()
        return [FlavorSourceRecord(**row) for row in rows]

    def delete_flavor_source(self, name: str, type: str) -> bool:
        with self.transaction(write=True) as conn:
            where = (t.flavors.c.name == name) & (t.flavors.c.type == type)
            return conn.execute(t.flavors.delete().where(where)).rowcount > 0

    # -- components ----------------------------------------------------------------------

    @staticmethod
    def _component(row: Mapping[Any, Any]) -> ComponentRecord:
        data = dict(row)
        data["configuration"] = json.loads(data["configuration"])
        return ComponentRecord(**data)

    def create_component(
        self, name: str, type: str, flavor: str, configuration: Mapping[str, Any]
    ) -> ComponentRecord:
        with self.transaction(write=True) as conn:
            where = (t.components.c.name == name) & (t.components.c.type == type)
            if conn.execute(sa.select(t.components.c.id).where(where)).first():
                raise StackError(
                    f"A {type.replace('_', ' ')} named '{name}' already exists. "
                    "Pick another name, or update it instead."
                )
            component_id = insert_component(conn, name, type, flavor, configuration)
            row = conn.execute(sa.select(t.components).where(t.components.c.id == component_id))
            return self._component(row.mappings().one())

    def get_component(self, name: str, type: str) -> ComponentRecord | None:
        where = (t.components.c.name == name) & (t.components.c.type == type)
        with self.transaction() as conn:
            row = conn.execute(sa.select(t.components).where(where)).mappings().first()
        return None if row is None else self._component(row)

    def get_component_by_id(self, component_id: str) -> ComponentRecord | None:
        with self.transaction() as conn:
            query = sa.select(t.components).where(t.components.c.id == component_id)
            row = conn.execute(query).mappings().first()
        return None if row is None else self._component(row)

    def list_components(self, type: str | None = None) -> list[ComponentRecord]:
        query = sa.select(t.components).order_by(t.components.c.type, t.components.c.name)
        if type is not None:
            query = query.where(t.components.c.type == type)
        with self.transaction() as conn:
            return [self._component(row) for row in conn.execute(query).mappings()]

    def update_component(
        self, name: str, type: str, configuration: Mapping[str, Any]
    ) -> ComponentRecord:
        where = (t.components.c.name == name) & (t.components.c.type == type)
        with self.transaction(write=True) as conn:
            result = conn.execute(
                t.components.update()
                .where(where)
                .values(
                    configuration=configuration_json(configuration),
                    updated=sa.func.current_timestamp(),
                )
            )
            if result.rowcount == 0:
                raise StackError(f"No {type.replace('_', ' ')} named '{name}'.")
            return self._component(
                conn.execute(sa.select(t.components).where(where)).mappings().one()
            )

    def delete_component(self, name: str, type: str) -> None:
        where = (t.components.c.name == name) & (t.components.c.type == type)
        with self.transaction(write=True) as conn:
            row = conn.execute(sa.select(t.components.c.id).where(where)).first()
            if row is None:
                raise StackError(f"No {type.replace('_', ' ')} named '{name}'.")
            users = (
                conn.execute(
                    sa.select(t.stacks.c.name)
                    .join(t.stack_components, t.stack_components.c.stack_id == t.stacks.c.id)
                    .where(t.stack_components.c.component_id == row[0])
                )
                .scalars()
                .all()
            )
            if users:
                raise StackError(
                    f"The {type.replace('_', ' ')} '{name}' is used by the stack(s) "
                    f"{', '.join(sorted(users))}; delete or change those stacks first."
                )
            servers = (
                conn.execute(
                    sa.select(t.services.c.uuid)
                    .where(t.services.c.deployer_id == row[0])
                    .order_by(t.services.c.uuid)
                )
                .scalars()
                .all()
            )
            if servers:
                # Its servers would keep running with no command able to reach them.
                shown = ", ".join(uuid[:8] for uuid in servers[:5])
                more = f" and {len(servers) - 5} more" if len(servers) > 5 else ""
                raise StackError(
                    f"The model deployer '{name}' still has {len(servers)} model "
                    f"server(s) ({shown}{more}); delete them first: put it in the active "
                    "stack (`shipyard stack register tmp -a default --orchestrator default "
                    f"-d {name} --set`), run `shipyard model-deployer models delete UUID` "
                    "for each, then delete it."
                )
            conn.execute(t.components.delete().where(where))

    # -- stacks --------------------------------------------------------------------------

    def _stack(self, conn: sa.Connection, row: Mapping[Any, Any]) -> StackRecord:
        members = conn.execute(
            sa.select(t.components)
            .join(t.stack_components, t.stack_components.c.component_id == t.components.c.id)
            .where(t.stack_components.c.stack_id == row["id"])
        ).mappings()
        components = {member["type"]: self._component(member) for member in members}
        return StackRecord(components=components, **dict(row))

    def create_stack(self, name: str, component_ids: Mapping[str, str]) -> StackRecord:
        with self.transaction(write=True) as conn:
            if conn.execute(sa.select(t.stacks.c.id).where(t.stacks.c.name == name)).first():
                raise StackError(f"A stack named '{name}' already exists. Pick another name.")
            stack_id = insert_stack(conn, name, component_ids)
            row = conn.execute(sa.select(t.stacks).where(t.stacks.c.id == stack_id))
            return self._stack(conn, row.mappings().one())

    def get_stack(self, name: str) -> StackRecord | None:
        with self.transaction() as conn:
            row = conn.execute(sa.select(t.stacks).where(t.stacks.c.name == name)).mappings()
            found = row.first()
            return None if found is None else self._stack(conn, found)

    def list_stacks(self) -> list[StackRecord]:
        with self.transaction() as conn:
            rows = conn.execute(sa.select(t.stacks).order_by(t.stacks.c.name)).mappings().all()
            return [self._stack(conn, row) for row in rows]

    def get_active_stack_name(self) -> str | None:
        with self.transaction() as conn:
            query = sa.select(t.settings.c.value).where(t.settings.c.key == ACTIVE_STACK)
            return conn.execute(query).scalar()

    def set_active_stack(self, name: str) -> None:
        with self.transaction(write=True) as conn:
            if not conn.execute(sa.select(t.stacks.c.id).where(t.stacks.c.name == name)).first():
                raise StackError(f"No stack named '{name}'. See `shipyard stack list`.")
            set_setting(conn, ACTIVE_STACK, name)

    def delete_stack(self, name: str) -> None:
        with self.transaction(write=True) as conn:
            active = conn.execute(
                sa.select(t.settings.c.value).where(t.settings.c.key == ACTIVE_STACK)
            ).scalar()
            if active == name:
                raise StackError(
                    f"The stack '{name}' is active and cannot be deleted. "
                    "Activate another one first: `shipyard stack set OTHER`."
                )
            row = conn.execute(sa.select(t.stacks.c.id).where(t.stacks.c.name == name)).first()
            if row is None:
                raise StackError(f"No stack named '{name}'. See `shipyard stack list`.")
            conn.execute(t.stack_components.delete().where(t.stack_components.c.stack_id == row[0]))
            conn.execute(t.stacks.delete().where(t.stacks.c.id == row[0]))

    # -- services ------------------------------------------------------------------------

    def save_service(self, record: ServiceRecord) -> None:
        """Insert or replace the registry entry of ``record.uuid``."""
        values = record.model_dump(exclude={"created", "updated"})
        with self.transaction(write=True) as conn:
            where = t.services.c.uuid == record.uuid
            if conn.execute(sa.select(t.services.c.uuid).where(where)).first():
                conn.execute(
                    t.services.update()
                    .where(where)
                    .values(updated=sa.func.current_timestamp(), **values)
                )
            else:
                conn.execute(t.services.insert().values(**values))

    def get_service(self, uuid_: str) -> ServiceRecord | None:
        with self.transaction() as conn:
            row = conn.execute(sa.select(t.services).where(t.services.c.uuid == uuid_))
            found = row.mappings().first()
        return None if found is None else ServiceRecord(**found)

    def find_services(self, **filters: str | None) -> list[ServiceRecord]:
        """Entries whose columns equal every filter that is not None."""
        query = sa.select(t.services).order_by(t.services.c.created, t.services.c.uuid)
        for key, value in filters.items():
            if key not in _SERVICE_FILTERS:
                raise StoreError(f"Unknown service filter '{key}'; use one of {_SERVICE_FILTERS}.")
            if value is not None:
                query = query.where(t.services.c[key] == value)
        with self.transaction() as conn:
            return [ServiceRecord(**row) for row in conn.execute(query).mappings()]

    def match_service_uuids(self, prefix: str) -> list[str]:
        """UUIDs starting with ``prefix`` (for the CLI's abbreviated UUIDs)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = sa.select(t.services.c.uuid).where(
            t.services.c.uuid.like(f"{escaped}%", escape="\\")
        )
        with self.transaction() as conn:
            return list(conn.execute(query).scalars())

    def delete_service(self, uuid_: str) -> bool:
        with self.transaction(write=True) as conn:
            return conn.execute(t.services.delete().where(t.services.c.uuid == uuid_)).rowcount > 0

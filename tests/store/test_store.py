from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shipyard.errors import StackError, StoreError
from shipyard.store import ServiceRecord, Store
from shipyard.store import _schema as schema


def test_fresh_home_has_an_active_default_stack(store: Store, home: Path) -> None:
    assert (home / "store.db").is_file()
    assert store.get_active_stack_name() == "default"
    stack = store.get_stack("default")
    assert stack is not None
    assert {t: (c.name, c.flavor) for t, c in stack.components.items()} == {
        "artifact_store": ("default", "local"),
        "orchestrator": ("default", "local"),
        "model_deployer": ("default", "local"),
    }


def test_reopening_does_not_bootstrap_twice(store: Store) -> None:
    store.set_active_stack("default")
    with Store.open() as again:
        assert len(again.list_stacks()) == 1
        assert len(again.list_components()) == 3


def test_deleted_default_stack_stays_deleted(store: Store) -> None:
    ids = {t: c.id for t, c in store.get_stack("default").components.items()}  # type: ignore[union-attr]
    store.create_stack("other", ids)
    store.set_active_stack("other")
    store.delete_stack("default")
    with Store.open() as again:
        assert [s.name for s in again.list_stacks()] == ["other"]


def test_sqlite_runs_in_wal_mode(store: Store, home: Path) -> None:
    with sqlite3.connect(home / "store.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_head_revision_matches_alembic_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == schema.HEAD_REVISION


def test_migrations_produce_exactly_the_declared_schema(store: Store, home: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(f"sqlite:///{home / 'store.db'}")
    with engine.connect() as conn:
        # Every table is declared in the store schema (pipeline runs included).
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or name in schema.metadata.tables
                )
            },
        )
        diff = compare_metadata(context, schema.metadata)
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert diff == []
    assert version == schema.HEAD_REVISION


def test_component_names_are_unique_per_type(store: Store) -> None:
    store.create_component("mine", "model_deployer", "local", {"workers": 2})
    store.create_component("mine", "orchestrator", "local", {})
    with pytest.raises(StackError, match="model deployer named 'mine' already exists"):
        store.create_component("mine", "model_deployer", "local", {})
    updated = store.update_component("mine", "model_deployer", {"workers": 3})
    assert updated.configuration == {"workers": 3}
    store.delete_component("mine", "model_deployer")
    assert store.get_component("mine", "model_deployer") is None
    assert store.get_component("mine", "orchestrator") is not None


def test_a_component_in_a_stack_cannot_be_deleted(store: Store) -> None:
    with pytest.raises(StackError, match="used by the stack\\(s\\) default"):
        store.delete_component("default", "model_deployer")


def test_the_active_stack_cannot_be_deleted(store: Store) -> None:
    with pytest.raises(StackError, match="is active and cannot be deleted"):
        store.delete_stack("default")
    with pytest.raises(StackError, match="No stack named 'nope'"):
        store.set_active_stack("nope")


def _service(uuid: str, **fields: Any) -> ServiceRecord:
    return ServiceRecord(
        **{"uuid": uuid, "flavor": "local", "service_type": "m:C", "body": "{}", **fields}
    )


def test_services_are_found_by_filters_and_prefix(store: Store) -> None:
    store.save_service(_service("aaaa-1", pipeline_name="p", model_name="m1"))
    store.save_service(_service("aaab-2", pipeline_name="p", model_name="m2"))
    store.save_service(_service("b_%-3", pipeline_name="q", model_name="m1"))
    assert [r.uuid for r in store.find_services(pipeline_name="p")] == ["aaaa-1", "aaab-2"]
    assert [r.uuid for r in store.find_services(model_name="m1", pipeline_name="q")] == ["b_%-3"]
    assert sorted(store.match_service_uuids("aaa")) == ["aaaa-1", "aaab-2"]
    # LIKE wildcards in a prefix are taken literally.
    assert store.match_service_uuids("b_%") == ["b_%-3"]
    assert store.match_service_uuids("b%") == []
    store.save_service(_service("aaaa-1", pipeline_name="p", model_name="m1", body='{"x": 1}'))
    assert store.get_service("aaaa-1").body == '{"x": 1}'  # type: ignore[union-attr]
    assert store.delete_service("aaaa-1")
    assert not store.delete_service("aaaa-1")
    with pytest.raises(StoreError, match="Unknown service filter"):
        store.find_services(colour="red")


def test_an_unusable_store_url_is_one_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_STORE_URL", f"sqlite:///{home}/missing/dir/store.db")
    with pytest.raises(StoreError, match="Cannot open the store at sqlite:///"):
        Store.open()


def test_the_store_url_password_is_never_shown(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 1 on localhost: nothing listens, so the connection fails quickly.
    monkeypatch.setenv("SHIPYARD_STORE_URL", "postgresql+psycopg://bob:hunter2@127.0.0.1:1/db")
    with pytest.raises(StoreError) as info:
        Store.open()
    message = str(info.value)
    assert "hunter2" not in message
    assert "postgresql+psycopg://***@127.0.0.1:1/db" in message


def test_a_missing_database_driver_is_one_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_STORE_URL", "mysql://u:secret@localhost/db")
    with pytest.raises(StoreError, match="driver is not installed") as info:
        Store.open()
    assert "secret" not in str(info.value)
    assert "postgresql+psycopg" in str(info.value)


def test_a_model_deployer_with_model_servers_cannot_be_deleted(store: Store) -> None:
    deployer = store.create_component("md3", "model_deployer", "local", {})
    store.save_service(_service("c27a558f-1", deployer_id=deployer.id))
    with pytest.raises(StackError, match="'md3' still has 1 model server\\(s\\) \\(c27a558f\\)"):
        store.delete_component("md3", "model_deployer")
    assert store.get_component("md3", "model_deployer") is not None
    assert store.delete_service("c27a558f-1")
    store.delete_component("md3", "model_deployer")
    assert store.get_component("md3", "model_deployer") is None

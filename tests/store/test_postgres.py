"""The store on PostgreSQL (SHIPYARD_STORE_URL), against a throwaway local cluster.

Runs where the PostgreSQL server binaries and psycopg are installed (`pip install
'shipyard[postgres]'`, Debian package `postgresql`); skipped, saying so, elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.store import ServiceRecord, Store
from shipyard.store import _schema as schema

from .test_concurrency import _WRITER


@pytest.fixture(scope="module")
def cluster(postgres_server: str) -> str:
    return postgres_server


@pytest.fixture
def url(cluster: str) -> str:
    """A fresh database for each test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{cluster.replace('+psycopg', '')}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{cluster}/{name}"


def test_open_migrates_and_bootstraps(url: str, tmp_path: Path) -> None:
    import sqlalchemy as sa

    with Store.open(Settings(home=tmp_path, store_url=url)) as store:
        assert store.get_active_stack_name() == "default"
        stack = store.get_stack("default")
        assert stack is not None and set(stack.components) == {
            "artifact_store",
            "orchestrator",
            "model_deployer",
        }
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert version == schema.HEAD_REVISION
    assert set(schema.metadata.tables) <= tables
    assert not (tmp_path / "store.db").exists()


def test_components_stacks_and_services(url: str, tmp_path: Path) -> None:
    with Store.open(Settings(home=tmp_path, store_url=url)) as store:
        deployer = store.create_component("pg", "model_deployer", "local", {"workers": 2})
        ids = {t: c.id for t, c in store.get_stack("default").components.items()}  # type: ignore[union-attr]
        store.create_stack("s", {**ids, "model_deployer": deployer.id})
        store.set_active_stack("s")
        store.save_service(
            ServiceRecord(
                uuid="u-1",
                flavor="local",
                service_type="m:C",
                body="{}",
                model_name="m",
                deployer_id=deployer.id,
            )
        )
        [found] = store.find_services(model_name="m", deployer_id=deployer.id)
        assert found.created is not None
        assert store.match_service_uuids("u-") == ["u-1"]
    with Store.open(Settings(home=tmp_path, store_url=url)) as again:
        assert again.get_active_stack_name() == "s"
        assert again.get_component("pg", "model_deployer").configuration == {"workers": 2}  # type: ignore[union-attr]


def test_processes_writing_at_once_lose_nothing(url: str, tmp_path: Path) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path), "SHIPYARD_STORE_URL": url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, tag, "15"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b", "c")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    with Store.open(Settings(home=tmp_path, store_url=url)) as store:
        assert [s.name for s in store.list_stacks()] == ["default"]
        assert len(store.find_services()) == 45
        names = {c.name for c in store.list_components("model_deployer")}
        assert {f"{t}-{i}" for t in "abc" for i in range(15)} <= names


def test_named_locks_are_advisory_locks(url: str, tmp_path: Path) -> None:
    with Store.open(Settings(home=tmp_path, store_url=url)) as store:
        inside = 0
        overlaps = []

        def work() -> None:
            nonlocal inside
            for _ in range(20):
                with store.lock("deploy:x"):
                    inside += 1
                    overlaps.append(inside)
                    threading.Event().wait(0.001)
                    inside -= 1

        threads = [threading.Thread(target=work) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert overlaps == [1] * 60

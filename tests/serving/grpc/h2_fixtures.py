"""Fixtures the HTTP/2 test modules share: the models, a module-wide server on its own
thread, a raw ``h2`` client of it, and a server of a test's own. A test module takes
them all with ``from h2_fixtures import *`` (a conftest.py here would shadow the one in
tests/serving that its modules import from; see grpc_helpers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from grpc_helpers import save_grpc_models
from h2_client import H2Client
from h2_server import ThreadServer, plane

__all__ = ["client", "fresh_server", "grpc_models", "local_model", "server"]


@pytest.fixture(scope="module")
def grpc_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(save_grpc_models(tmp_path_factory.mktemp("grpc-models")))


@pytest.fixture(scope="module")
def local_model(grpc_models: Path) -> Any:
    """The logistic model as sklearn loads it: what every answer is checked against."""
    return joblib.load(grpc_models / "logistic" / "model.joblib")


@pytest.fixture(scope="module")
def server(grpc_models: Path) -> Iterator[ThreadServer]:
    with ThreadServer(plane(grpc_models)) as running:
        yield running


@pytest.fixture
def client(server: ThreadServer) -> Iterator[H2Client]:
    connection = H2Client(server.port)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def fresh_server(grpc_models: Path) -> Iterator[ThreadServer]:
    """A server of the test's own, for tests that stop it or leave work running in it."""
    with ThreadServer(plane(grpc_models)) as running:
        yield running

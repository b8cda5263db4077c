"""Fixtures for the models layer: a private SHIPYARD_HOME and small fitted models."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from shipyard.testing import free_port, wait_until


@pytest.fixture(autouse=True)
def shipyard_home(home: Path) -> Path:
    """Every test gets its own SHIPYARD_HOME (see tests/conftest.py), so model caches
    and servers never leak between tests."""
    return home


@pytest.fixture(scope="session")
def xy() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A small, separable 3-class problem with 4 features."""
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 0, 0], [4, 4, 0, 0], [0, 4, 4, 4]], dtype=float)
    y = np.repeat(np.arange(3), 30)
    x = centers[y] + rng.normal(scale=0.5, size=(90, 4))
    return x, y


@pytest.fixture(scope="session")
def classifier(xy: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]) -> Any:
    from sklearn.linear_model import LogisticRegression

    x, y = xy
    return LogisticRegression(max_iter=500).fit(x, y)


RunPython = Callable[[str, Path], str]


@pytest.fixture
def run_python() -> RunPython:
    """Run code in a fresh interpreter started in a given directory; return its stdout.

    The child gets no PYTHONPATH, so only installed packages (and its cwd) are importable:
    what a model server process on another machine would have.
    """

    def run(code: str, cwd: Path) -> str:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stderr}")
        return proc.stdout

    return run


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli(tmp_path: Path, without_packages: Callable[..., dict[str, str]]) -> RunCli:
    """Run ``shipyard ARGS`` in a child process; ``blocked=`` packages cannot be imported."""

    def run(*args: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        if blocked:
            env.update(without_packages(*blocked))
        return subprocess.run(
            [sys.executable, "-m", "shipyard.cli.main", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@contextmanager
def serving_folder(folder: Path) -> Iterator[str]:
    """``python -m http.server`` serving ``folder`` on 127.0.0.1: its base URL, until the
    block ends (a remote place to load models from)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, "the http.server to answer")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def serve_folder() -> Callable[[Path], AbstractContextManager[str]]:
    """``serving_folder``: with ``serve_folder(folder) as base_url`` a test loads models
    from a real HTTP server."""
    return serving_folder

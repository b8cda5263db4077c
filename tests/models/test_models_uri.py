"""Remote model URIs (fsspec): fetched once into $SHIPYARD_HOME/cache/models, then reused."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import joblib
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from shipyard.errors import ModelLoadError, ModelNotFoundError
from shipyard.models import load_model, resolve_model_uri, save_model


@pytest.fixture
def memfs() -> Iterator[tuple[MemoryFileSystem, str]]:
    """The in-memory file system and a unique root in it, removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/models-{uuid.uuid4().hex}"
    try:
        yield fs, root
    finally:
        if fs.exists(root):
            fs.rm(root, recursive=True)


@pytest.fixture
def fetch_count(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts bytes actually copied out of the memory file system."""
    counts = {"files": 0}
    original = MemoryFileSystem.get_file

    def counting(self: MemoryFileSystem, rpath: str, lpath: str, **kwargs: Any) -> Any:
        counts["files"] += 1
        return original(self, rpath, lpath, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "get_file", counting)
    return counts


def _joblib_bytes(model: Any) -> bytes:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


def test_memory_file_is_fetched_once(
    memfs: tuple[MemoryFileSystem, str],
    fetch_count: dict[str, int],
    classifier: Any,
    xy: Any,
    shipyard_home: Path,
) -> None:
    fs, root = memfs
    x, _ = xy
    fs.pipe(f"{root}/churn.joblib", _joblib_bytes(classifier))
    uri = f"memory://{root}/churn.joblib"

    first = load_model(uri)
    assert fetch_count["files"] == 1
    assert first.name == "churn"
    assert first.path.is_relative_to(shipyard_home / "cache" / "models")
    np.testing.assert_array_equal(first.predictor.predict(x), classifier.predict(x))

    second = load_model(uri)
    assert fetch_count["files"] == 1, "an unchanged remote model must not be fetched again"
    assert second.path == first.path


def test_changed_remote_model_is_fetched_again(
    memfs: tuple[MemoryFileSystem, str], fetch_count: dict[str, int], xy: Any
) -> None:
    from sklearn.dummy import DummyClassifier

    fs, root = memfs
    x, y = xy
    uri = f"memory://{root}/m.joblib"
    fs.pipe(
        f"{root}/m.joblib",
        _joblib_bytes(DummyClassifier(constant=0, strategy="constant").fit(x, y)),
    )
    first = resolve_model_uri(uri)
    fs.pipe(
        f"{root}/m.joblib",
        _joblib_bytes(DummyClassifier(constant=2, strategy="constant").fit(x, y)),
    )
    loaded = load_model(uri)
    assert fetch_count["files"] == 2
    assert loaded.path != first.parent
    np.testing.assert_array_equal(loaded.predictor.predict(x[:3]), [2, 2, 2])


def test_memory_model_directory_with_manifest(
    memfs: tuple[MemoryFileSystem, str],
    fetch_count: dict[str, int],
    tmp_path: Path,
    classifier: Any,
    xy: Any,
) -> None:
    fs, root = memfs
    x, _ = xy
    local = save_model(classifier, tmp_path / "local", input_example=x[:2], name="iris")
    for f in sorted(local.iterdir()):
        fs.pipe(f"{root}/iris-v1/{f.name}", f.read_bytes())
    uri = f"memory://{root}/iris-v1"

    loaded = load_model(uri)
    files = len(list(local.iterdir()))
    assert fetch_count["files"] == files
    assert loaded.name == "iris"
    np.testing.assert_array_equal(loaded.input_example, x[:2])
    np.testing.assert_array_equal(loaded.predictor.predict(x), classifier.predict(x))
    load_model(uri)
    assert fetch_count["files"] == files


def test_missing_remote_model_is_not_found(memfs: tuple[MemoryFileSystem, str]) -> None:
    _, root = memfs
    with pytest.raises(ModelNotFoundError, match=r"memory://.*nothing exists"):
        load_model(f"memory://{root}/absent.joblib")


def test_unknown_protocol_says_what_to_install() -> None:
    with pytest.raises(ModelLoadError, match="protocol"):
        resolve_model_uri("nosuchproto://bucket/model.joblib")


def test_local_paths_are_not_copied(tmp_path: Path, classifier: Any) -> None:
    path = save_model(classifier, tmp_path / "m")
    assert resolve_model_uri(str(path)) == path
    assert resolve_model_uri(path.as_uri()) == path


def test_concurrent_fetches_of_one_uri_agree(
    memfs: tuple[MemoryFileSystem, str],
    monkeypatch: pytest.MonkeyPatch,
    classifier: Any,
    shipyard_home: Path,
) -> None:
    # Two loaders (two server workers) fetch the same model at the same moment: both must
    # end up with one complete cache entry and no staging leftovers.
    import threading

    fs, root = memfs
    fs.pipe(f"{root}/m.joblib", _joblib_bytes(classifier))
    both_fetching = threading.Barrier(2, timeout=60)
    original = MemoryFileSystem.get_file

    def slow_get(self: MemoryFileSystem, rpath: str, lpath: str, **kwargs: Any) -> Any:
        both_fetching.wait()
        return original(self, rpath, lpath, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "get_file", slow_get)
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(resolve_model_uri(f"memory://{root}/m.joblib"))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    cache = shipyard_home / "cache" / "models"
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []
    assert len([p for p in cache.iterdir() if p.name != "by-uri"]) == 1


def test_unreachable_store_falls_back_to_the_last_fetched_copy(
    memfs: tuple[MemoryFileSystem, str],
    monkeypatch: pytest.MonkeyPatch,
    classifier: Any,
    xy: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fs, root = memfs
    x, _ = xy
    uri = f"memory://{root}/m.joblib"
    other = f"memory://{root}/never-fetched.joblib"
    fs.pipe(f"{root}/m.joblib", _joblib_bytes(classifier))
    first = load_model(uri)

    def unreachable(self: MemoryFileSystem, path: str, **kwargs: Any) -> Any:
        raise ConnectionError("store is down")

    monkeypatch.setattr(MemoryFileSystem, "info", unreachable)
    with caplog.at_level("WARNING", logger="shipyard.models"):
        again = load_model(uri)
    assert again.path == first.path
    assert "store is down" in caplog.text
    np.testing.assert_array_equal(again.predictor.predict(x), classifier.predict(x))
    with pytest.raises(ModelLoadError, match=r"store is down.*No copy was fetched before"):
        load_model(other)


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("memory://bob:hunter2@nowhere/model.joblib", ModelNotFoundError),
        ("nosuchproto://bob:hunter2@host/model.joblib", ModelLoadError),
    ],
)
def test_credentials_in_a_model_uri_are_masked_in_errors(uri: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        resolve_model_uri(uri)
    assert "hunter2" not in str(info.value)
    assert "://***@nowhere" in str(info.value) or "://***@host" in str(info.value)

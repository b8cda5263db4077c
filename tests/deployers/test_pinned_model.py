"""A deploy pins the model: the server loads a private, content-addressed copy in
SHIPYARD_HOME, so a restart serves what was deployed whatever happens to the user's
folder; the same content is one copy; the last service using a copy takes it along."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path

import httpx

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer

from .conftest import Models


def ok(*args: str) -> str:
    """``shipyard ARGS`` in-process; its output."""
    from typer.testing import CliRunner

    from shipyard.cli.main import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _predict(server: LocalModelServer, models: Models) -> list[int]:
    rows = models.rows
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    response = httpx.post(
        str(server.prediction_url), json=body, headers=server.request_headers(), timeout=30
    )
    assert response.status_code == 200, response.text
    return [int(v) for v in response.json()["outputs"][0]["data"]]


def _sha256_of_folder(path: Path) -> str:
    """Independent of the code under test: names, sizes and bytes of every file."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path)}\0{file.stat().st_size}\0".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _snapshots(home: Path) -> list[str]:
    root = home / "snapshots"
    return (
        sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
        if root.exists()
        else []
    )


def test_a_restart_serves_the_deployed_model_after_the_folder_changes(
    home: Path, tmp_path: Path, models: Models
) -> None:
    folder = tmp_path / "mine"
    shutil.copytree(models.a, folder)
    sha = _sha256_of_folder(folder)
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=str(folder), model_name="pinned", workers=1), timeout=300
    )
    assert isinstance(server, LocalModelServer)
    expected = models.expected_a()
    assert _predict(server, models) == expected

    # describe (table and JSON) shows the copy and its hash.
    described = json.loads(ok("model-deployer", "models", "describe", "pinned", "--output", "json"))
    assert described["info"]["MODEL_SHA256"] == sha
    snapshot = Path(described["info"]["MODEL_SNAPSHOT"])
    assert snapshot.parent == home / "snapshots" / sha
    assert sha in ok("model-deployer", "models", "describe", "pinned")
    for path in [snapshot.parent, *snapshot.parent.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))

    # The user saves another model over the folder: a restart still serves the deployed one.
    shutil.rmtree(folder)
    shutil.copytree(models.b, folder)
    deployer.stop_model_server(server.uuid, timeout=60)
    restarted = deployer.start_model_server(server.uuid, timeout=300)
    assert isinstance(restarted, LocalModelServer)
    assert _predict(restarted, models) == expected
    # ... and after the folder is moved away.
    folder.rename(tmp_path / "moved")
    deployer.stop_model_server(server.uuid, timeout=60)
    again = deployer.start_model_server(server.uuid, timeout=300)
    assert isinstance(again, LocalModelServer)
    assert _predict(again, models) == expected
    [listed] = deployer.find_model_server(model_name="pinned")
    assert listed.config.model_uri == str(folder) and listed.status.last_error == ""


def test_the_same_content_is_one_copy_and_the_last_user_removes_it(
    home: Path, tmp_path: Path, models: Models
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(models.a, first)
    shutil.copytree(models.a, second)
    deployer = LocalModelDeployer.get_active_model_deployer()
    one = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=str(first), model_name="one", workers=1), timeout=300
    )
    two = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=str(second), model_name="two", workers=1), timeout=300
    )
    assert isinstance(one, LocalModelServer) and isinstance(two, LocalModelServer)
    sha_a = _sha256_of_folder(first)
    assert one.model_snapshot == two.model_snapshot and _snapshots(home) == [sha_a]

    # Redeploying the changed folder pins the new content; the old copy stays for `two`.
    shutil.rmtree(first)
    shutil.copytree(models.b, first)
    sha_b = _sha256_of_folder(first)
    updated = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=str(first), model_name="one", workers=1), timeout=300
    )
    assert isinstance(updated, LocalModelServer) and updated.uuid == one.uuid
    assert [int(v) for v in _predict(updated, models)] != models.expected_a()
    assert _snapshots(home) == sorted([sha_a, sha_b])
    # The same content again is a no-op on the same copy.
    same = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=str(first), model_name="one", workers=1), timeout=300
    )
    assert isinstance(same, LocalModelServer) and same.model_snapshot == updated.model_snapshot

    deployer.delete_model_server(two.uuid, timeout=60)
    assert _snapshots(home) == [sha_b]  # `one` moved on from a: nobody uses it now
    deployer.delete_model_server(one.uuid, timeout=60)
    assert _snapshots(home) == []

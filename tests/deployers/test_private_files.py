"""Secure by default: SHIPYARD_HOME and everything a deploy writes in it are private
(0700 folders, 0600 files), and a model URI's credentials never reach a process's argv."""

from __future__ import annotations

import stat
from pathlib import Path

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer

from .conftest import Models


def test_home_folders_and_files_are_private_after_a_deploy(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=models.a, model_name="clf", workers=1), timeout=300
    )
    assert isinstance(server, LocalModelServer)
    checked = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink() or path.is_socket():
            continue
        if path.is_dir() and path.parent == home / "artifacts":
            continue  # the artifact store's own layout, not this deploy's
        checked.append(path.name)
        expected = 0o700 if path.is_dir() else 0o600
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}, expected {oct(expected)}"
    assert {"store.db", "service.json", "service.log", "pid.json"} <= set(checked)


def test_a_uri_with_credentials_stays_out_of_argv(home: Path) -> None:
    uri = "s3://AKIAEXAMPLE:topsecret@bucket/models/m"
    server = LocalModelServer(config=LocalDeploymentConfig(model_uri=uri, model_name="m"))
    server.endpoint = server.endpoint.model_copy(update={"port": 18080})
    server.grpc_port = 18081
    argv = " ".join(server.command())
    assert "topsecret" not in argv
    assert "topsecret" in server.environment()["SHIPYARD_SERVER_MODELS"]

"""A model URI with credentials, really used: the model is fetched from a 127.0.0.1 HTTP
server that requires basic auth. The password reaches the server process (it loads the
model) but never argv, never a file in SHIPYARD_HOME (store.db bytes included), never a
listing or an error message."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from shipyard.cli._deployer import service_row, service_summary
from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.deployers.testing import files_holding, serve_files_with_basic_auth
from shipyard.errors import DeploymentError
from shipyard.services import process
from shipyard.store import Store

USER = "reader"
PASSWORD = "Pw-7c1f-test-only"


@dataclass
class AuthServer:
    port: int
    rows: np.ndarray
    authorized: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def uri(self, password: str = PASSWORD) -> str:
        return f"http://{USER}:{password}@127.0.0.1:{self.port}/clf.onnx"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    skl2onnx = pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("served")
    x, y = make_classification(n_samples=200, n_features=4, random_state=0)
    proto = skl2onnx.convert_sklearn(
        LogisticRegression().fit(x, y),
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={"zipmap": False},
    )
    (root / "clf.onnx").write_bytes(proto.SerializeToString())
    with serve_files_with_basic_auth(root, USER, PASSWORD) as served:
        yield AuthServer(served.port, x[:4], served.authorized, served.refused)


def _command_lines(pid: int) -> list[str]:
    lines = []
    for member in {pid, *process.group_members(pid)}:
        try:
            raw = Path(f"/proc/{member}/cmdline").read_bytes()
        except OSError:
            continue
        lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return lines


def test_credentials_are_used_but_never_stored_shown_or_in_argv(
    home: Path, auth_server: AuthServer
) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=auth_server.uri(), model_name="clf", workers=1),
        timeout=300,
    )
    assert isinstance(server, LocalModelServer)
    # The credential was really used: the server fetched the model with it.
    assert auth_server.authorized
    assert server.predict(auth_server.rows).shape[0] == len(auth_server.rows)

    pid = server.running_pid()
    assert pid is not None
    lines = _command_lines(pid)
    assert any("shipyard.serving" in line for line in lines), lines
    assert not [line for line in lines if PASSWORD in line]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert PASSWORD not in ps.stdout

    # Nothing under SHIPYARD_HOME holds it: store.db and its WAL, service.json, the
    # log, the model cache, the intent record.
    assert files_holding(home, PASSWORD.encode()) == []
    service_json = json.loads((server.run_path / "service.json").read_text())
    assert "{{secret.uri-" in service_json["config"]["model_uri"]
    with Store.open() as store:
        (record,) = store.find_services(model_name="clf")
        assert "{{secret.uri-" in record.model_uri and PASSWORD not in record.body

    shown = json.dumps([service_summary(deployer, server), service_row(server)])
    assert PASSWORD not in shown and USER not in shown

    # Deploying the same URI again is a no-op: same server, same process.
    again = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=auth_server.uri(), model_name="clf", workers=1),
        timeout=300,
    )
    assert again.uuid == server.uuid
    assert isinstance(again, LocalModelServer) and again.running_pid() == pid

    # Every file and folder of the home is private.
    for path in [home, *home.rglob("*")]:
        if path.is_symlink() or (path.is_dir() and path.parent == home / "artifacts"):
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def test_a_wrong_password_is_masked_in_the_error(home: Path, auth_server: AuthServer) -> None:
    wrong = "Wrong-9d2e-test-only"
    deployer = LocalModelDeployer.get_active_model_deployer()
    with pytest.raises(DeploymentError) as info:
        deployer.deploy_model(
            LocalDeploymentConfig(model_uri=auth_server.uri(wrong), model_name="bad"),
            timeout=120,
        )
    message = str(info.value)
    assert wrong not in message
    assert "http://***@127.0.0.1" in message
    assert auth_server.refused
    assert files_holding(home, wrong.encode()) == []

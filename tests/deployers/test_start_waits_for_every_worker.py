"""A deploy (and a start) is over when every worker is ready, not when the first one
answers the health check: until then the supervisor treats a worker's death as a failed
start and the whole server exits, so a server reported running must be past it."""

from __future__ import annotations

from pathlib import Path

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer
from shipyard.serving.control import send_command

from .slow_models import answer_of, slow_model


def test_deploy_returns_once_every_worker_is_ready(home: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    # The first worker to load is ready at once; the other loads for 4 s.
    uri = slow_model(tmp_path, "model", answer=7.0, delay=4.0, marks=marks)
    (Path(uri) / "first-is-quick").write_text("")
    deployer = LocalModelDeployer.get_active_model_deployer()
    server = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=uri, model_name="clf", workers=2), timeout=120
    )
    assert isinstance(server, LocalModelServer)
    status = send_command(server.control_socket, {"op": "status"}, timeout=30)
    assert status["ready"], status
    assert all(worker["ready"] for worker in status["workers"]), status
    server.stop(timeout=30)
    server.start(timeout=120)  # a start waits alike
    status = send_command(server.control_socket, {"op": "status"}, timeout=30)
    assert status["ready"], status
    assert answer_of(server) == 7.0

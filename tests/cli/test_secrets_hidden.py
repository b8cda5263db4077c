from __future__ import annotations

import json
from pathlib import Path

from shipyard.cli._deployer import service_row, service_summary
from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer, LocalModelServer


def test_credentials_in_a_model_uri_are_never_shown(home: Path) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    service = LocalModelServer(
        config=LocalDeploymentConfig(
            model_uri="s3://AKIAKEY:sup3rs3cret@bucket/models/clf",
            model_name="clf",
            secret_name="s3-credentials",
        )
    )
    shown = json.dumps([service_summary(deployer, service), service_row(service)])
    assert "sup3rs3cret" not in shown and "AKIAKEY" not in shown
    assert "s3://***@bucket/models/clf" in shown
    # The name of a secret is not a secret: it is shown, as the docs show it.
    assert "s3-credentials" in shown

"""What ZenML users write works: `from shipyard import pipeline, step` (lazily) and
`find_model_server(service_uuid=...)`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.deployers.local import LocalDeploymentConfig, LocalModelDeployer
from shipyard.errors import ConfigError

from .conftest import Models


def test_pipeline_and_step_import_from_the_top_level_lazily() -> None:
    code = (
        "import sys, shipyard\n"
        "assert 'shipyard.pipelines' not in sys.modules\n"
        "from shipyard import pipeline, step\n"
        "import shipyard.pipelines as p\n"
        "assert pipeline is p.pipeline and step is p.step\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_find_model_server_takes_service_uuid(home: Path, models: Models) -> None:
    deployer = LocalModelDeployer.get_active_model_deployer()
    service = deployer.deploy_model(
        LocalDeploymentConfig(model_uri=models.a, model_name="clf"), timeout=120
    )
    try:
        found = deployer.find_model_server(service_uuid=service.uuid)
        assert [s.uuid for s in found] == [service.uuid]
        assert deployer.find_model_server(service_uuid=service.uuid, uuid=service.uuid)
        with pytest.raises(ConfigError, match="give one"):
            deployer.find_model_server(service_uuid=service.uuid, uuid="other")
    finally:
        deployer.delete_model_server(service.uuid, force=True)

"""Several processes writing to one store at once: nothing is lost, nothing corrupted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shipyard.store import Store

_WRITER = """
import sys
from shipyard.store import ServiceRecord, Store

tag, count = sys.argv[1], int(sys.argv[2])
store = Store.open()
for i in range(count):
    store.create_component(f"{tag}-{i}", "model_deployer", "local", {"i": i})
    store.save_service(
        ServiceRecord(uuid=f"{tag}-{i}", flavor="local", service_type="m:C", body="{}")
    )
    # Read-modify-write in separate transactions, as a CLI does.
    store.update_component(f"{tag}-{i}", "model_deployer", {"i": i, "done": True})
print("ok")
"""


def _run_writers(home: Path, tags: list[str], count: int) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, tag, str(count)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"


def test_processes_opening_a_fresh_home_at_once_write_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tags = ["a", "b", "c"]
    _run_writers(home, tags, 25)
    store = Store.open(settings=_settings(home))
    try:
        # One bootstrap despite three racing first opens.
        assert [s.name for s in store.list_stacks()] == ["default"]
        components = store.list_components("model_deployer")
        names = {c.name for c in components}
        for tag in tags:
            for i in range(25):
                assert f"{tag}-{i}" in names
                assert store.get_service(f"{tag}-{i}") is not None
        assert all(c.configuration.get("done") for c in components if c.name != "default")
        assert len(store.find_services()) == 75
    finally:
        store.close()


def _settings(home: Path):  # type: ignore[no-untyped-def]
    from shipyard.config import Settings

    return Settings(home=home)

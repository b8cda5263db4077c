"""A store that cannot be written: one line naming the file and the next step, and
reading commands and ``stop`` keep working (an empty or damaged store through the CLI:
``tests/cli/test_store_errors.py``).

The full disk is a real one (a 8 MiB tmpfs, filled) and the read-only home a real
read-only mount, each in a user and mount namespace of its own (``unshare -rm``: no root
needed where unprivileged user namespaces are enabled)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.services import process

# -- a full disk and a read-only home, for real ------------------------------------------

_SCRIPT = r"""
set -u
run() {
  name=$1; shift
  "$PY" -m shipyard.cli.main "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  echo $? >"$OUT/$name.rc"
}
if [ "$MODE" = full ]; then
  mount -t tmpfs -o size=8m tmpfs "$MNT" || exit 90
fi
export SHIPYARD_HOME="$MNT/home"
run deploy deploy "$MODEL" --name clf --timeout 120
run describe0 model-deployer models describe clf -O json
if [ "$MODE" = full ]; then
  dd if=/dev/zero of="$MNT/filler" bs=64k >/dev/null 2>&1
  df -k "$MNT" >"$OUT/df.out"
else
  mount --bind "$MNT" "$MNT" && mount -o remount,bind,ro "$MNT" || exit 91
fi
run list model-deployer models list -O json
run describe model-deployer models describe clf -O json
run logs model-deployer models logs clf -n 5
run write secret create x -v y
run stop model-deployer models stop clf
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    import shipyard

    x, y = make_classification(n_samples=100, n_features=4, random_state=0)
    path = tmp_path_factory.mktemp("model") / "clf"
    shipyard.save_model(LogisticRegression().fit(x, y), path, input_example=x[:2])
    return str(path)


def _namespaces_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.fixture
def outcome(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Where the script's outputs land; the server it started is killed by PID at the end."""
    results: dict[str, str] = {}
    yield results
    pid = results.get("pid")
    if pid and process.process_start_time(int(pid)) is not None:
        os.killpg(int(pid), signal.SIGKILL)


def _run_in_namespace(
    mode: str, tmp_path: Path, model: str, results: dict[str, str]
) -> dict[str, tuple[int, str, str]]:
    if not _namespaces_available():
        pytest.skip("unshare -rm (unprivileged user and mount namespaces) is not available")
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    env = {**os.environ, "MODE": mode, "MNT": str(mnt), "OUT": str(out), "MODEL": model}
    env["PY"] = sys.executable
    done = subprocess.run(
        ["unshare", "-rm", "bash", "-c", _SCRIPT], env=env, capture_output=True, timeout=600
    )
    assert done.returncode == 0, done
    steps = {}
    for rc in out.glob("*.rc"):
        name = rc.stem
        steps[name] = (
            int(rc.read_text()),
            (out / f"{name}.out").read_text(),
            (out / f"{name}.err").read_text(),
        )
    assert steps["deploy"][0] == 0, steps["deploy"]
    pid = json.loads(steps["describe0"][1])["info"]["DAEMON_PID"]
    results["pid"] = str(pid)
    return steps


def _check_reads_and_stop(steps: dict[str, tuple[int, str, str]], pid: int) -> None:
    for name in ("list", "describe", "logs"):
        rc, stdout, stderr = steps[name]
        assert rc == 0, (name, stdout, stderr)
    (listed,) = json.loads(steps["list"][1])
    assert listed["model_name"] == "clf"
    assert json.loads(steps["describe"][1])["config"]["model_name"] == "clf"
    rc, stdout, stderr = steps["stop"]
    assert rc == 0, (stdout, stderr)
    assert "stopped" in stdout and "could not record it" in stderr
    assert process.process_start_time(pid) is None


def test_a_full_disk_is_named_and_reads_and_stop_still_work(
    tmp_path: Path, model_dir: str, outcome: dict[str, str]
) -> None:
    steps = _run_in_namespace("full", tmp_path, model_dir, outcome)
    rc, _, stderr = steps["write"]
    assert rc == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert "is full" in stderr and "Free some space" in stderr, stderr
    _check_reads_and_stop(steps, int(outcome["pid"]))


def test_a_read_only_home_still_lists_describes_logs_and_stops(
    tmp_path: Path, model_dir: str, outcome: dict[str, str]
) -> None:
    steps = _run_in_namespace("ro", tmp_path, model_dir, outcome)
    rc, _, stderr = steps["write"]
    assert rc == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert "read-only" in stderr, stderr
    _check_reads_and_stop(steps, int(outcome["pid"]))

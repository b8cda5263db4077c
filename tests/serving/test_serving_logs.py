"""What the server writes to its log: a start-up error once, each model swap with its
fingerprint, and with ``--access-log`` one line per request."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from shipyard.testing import free_port, start_server, wait_until


def test_a_start_up_error_is_printed_once_not_once_per_worker(
    models_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(models_dir / "iris", broken)
    (broken / "model.joblib").write_bytes(b"not a joblib file")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipyard.cli.main",
            "serve",
            str(broken),
            "--workers",
            "2",
            "-p",
            str(free_port()),
            "--no-grpc",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    output = done.stdout + done.stderr
    # The cause (the model's path and what failed) appears once, on the one Error: line.
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(broken) in errors[0], output
    # Besides the workers' INFO lines (a model that runs code says so), only that Error: line.
    assert [
        line for line in done.stderr.splitlines() if line.strip() and not line.startswith("INFO ")
    ] == [line for line in done.stderr.splitlines() if line.startswith("Error: ")], done.stderr


def test_the_log_records_each_swap_with_its_fingerprint(models_dir: Path) -> None:
    with start_server(models_dir / "const1", args=["--name", "m"]) as server:
        first = server.status()["models"][0]["fingerprint"]
        assert f"serving model 'm' from {models_dir / 'const1'} (fingerprint {first[:12]})" in (
            server.log()
        )
        assert server.command({"op": "reload", "model_uri": str(models_dir / "const2")})["ok"]
        second = server.status()["models"][0]["fingerprint"]
        line = (
            f"swapped model 'm': {models_dir / 'const1'} (fingerprint {first[:12]}) -> "
            f"{models_dir / 'const2'} (fingerprint {second[:12]})"
        )
        wait_until(lambda: line in server.log(), "the swap in the log")


def test_access_log_has_a_line_per_request(models_dir: Path) -> None:
    with start_server(
        models_dir / "const1", args=["--name", "m", "--access-log"], workers=2
    ) as server:
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1] * 4}]}
        assert httpx.post(f"{server.url}/v2/models/m/infer", json=body).status_code == 200
        assert (
            httpx.post(f"{server.url}/v2/models/nope/infer?token=s3cret", json=body).status_code
            == 404
        )
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200

        def lines() -> list[tuple[str, str, str]]:
            return re.findall(r'"(\w+ \S+)" (\d+) ([\d.]+) ms', server.log())

        wait_until(lambda: len(lines()) >= 3, "three access log lines")
        logged = {(request, status) for request, status, _ in lines()}
        assert ("POST /v2/models/m/infer", "200") in logged
        assert ("POST /v2/models/nope/infer", "404") in logged  # no query: it may hold secrets
        assert ("GET /v2/health/ready", "200") in logged
        assert "s3cret" not in server.log()


def test_no_access_log_by_default(models_dir: Path) -> None:
    with start_server(models_dir / "const1", args=["--name", "m"]) as server:
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
        assert "/v2/health/ready" not in server.log()

"""``shipyard serve`` and ``python -m shipyard.serving`` as a user runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from shipyard.serving.config import ModelSpec, ServerConfig
from shipyard.testing import free_port


def test_no_model_is_one_clear_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.serving"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "No model to serve" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_option_value_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.serving", "x", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "workers" in done.stderr


def test_shipyard_serve_runs_the_server(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard.cli.main",
                "serve",
                str(models_dir / "const1"),
                "--name",
                "answer",
                "--http-port",
                str(port),
                "--workers",
                "1",
                "--no-grpc",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "ready" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert f"http://127.0.0.1:{port}" in log.read_text()
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0] * 4}]}
        answer = httpx.post(f"http://127.0.0.1:{port}/v2/models/answer/infer", json=body)
        assert answer.json()["outputs"][0]["data"] == [1.0]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 0


def test_busy_port_is_one_clear_line(models_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "shipyard.serving",
                str(models_dir / "const1"),
                "--http-port",
                str(port),
                "--no-grpc",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "already in use" in done.stderr
    assert "--http-port" in done.stderr
    assert "Traceback" not in done.stderr


def test_two_models_with_one_name_are_refused(models_dir: Path, tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "const1").symlink_to(models_dir / "const2")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipyard.serving",
            str(models_dir / "const1"),
            "--model-repository",
            str(repository),
            "--http-port",
            "0",
            "--no-grpc",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Two models would be served as 'const1'" in done.stderr


def _refused(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "entry", [["-m", "shipyard.cli.main", "serve"], ["-m", "shipyard.serving"]]
)
def test_a_name_no_url_can_hold_is_refused_up_front(entry: list[str]) -> None:
    done = _refused(*entry, "./no-such-model", "--name", "bad/name")
    assert done.returncode != 0
    assert done.stderr.strip() == (
        "Error: A model name may use letters, digits, '-', '_' and '.'; got 'bad/name'"
    )


def test_the_server_config_refuses_bad_names_from_every_source() -> None:
    for name in ("bad/name", "", "..", "with space"):
        with pytest.raises(ValidationError, match="A model name may use letters"):
            ServerConfig(models=[ModelSpec(uri="x", name=name)])
    # The environment is an entry point too (a container started without arguments).
    done = _refused(
        "-c",
        "from shipyard.serving.config import ServerConfig; ServerConfig()",
        env={"SHIPYARD_SERVER_MODELS": '[{"uri": "x", "name": "a/b"}]'},
    )
    assert "got 'a/b'" in done.stderr
    assert ServerConfig(models=[ModelSpec(uri="x", name="iris-2_v1.0")]).models[0].name


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--max-batch-size", "0", "--max-batch-size: Input should be greater than or equal to 1"),
        ("--max-batch-delay", "-1", "--max-batch-delay: Input should be greater than or equal"),
        ("--http-port", "70000", "--http-port: Input should be less than or equal to 65535"),
    ],
)
def test_bad_option_values_are_one_line_naming_the_option(
    option: str, value: str, expected: str
) -> None:
    done = _refused("-m", "shipyard.cli.main", "serve", "./no-such-model", option, value)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert f"(got {value}" in lines[0]


def test_a_core_install_gets_install_advice_not_a_traceback() -> None:
    # orjson hidden, as in `pip install shipyard` without the serve extra.
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from shipyard.serving.__main__ import main\n"
        "sys.exit(main(['./no-such-model', '--no-grpc']))"
    )
    done = _refused("-c", code)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Error: The package 'orjson' is needed for the model server but is not installed. "
        "Install it with: pip install 'shipyard[serve]'"
    )


def test_shipyard_serve_and_python_m_serving_take_the_same_options() -> None:
    # Both front ends hand their values to build_config by keyword name (Typer for its
    # help, argparse for a fast start): an option added to one and not the others fails here.
    import inspect

    import typer.core
    import typer.main

    from shipyard.cli.main import app
    from shipyard.serving.__main__ import _parser, build_config

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.commands["serve"]
    typer_flags = {p.name: set(p.opts) for p in command.params if p.name != "tracking_uri"}
    argparse_flags = {a.dest: set(a.option_strings) for a in _parser()._actions if a.dest != "help"}
    assert (
        set(typer_flags) == set(argparse_flags) == set(inspect.signature(build_config).parameters)
    )
    for name, flags in argparse_flags.items():
        assert flags <= typer_flags[name], name

"""The secrets store: a CLI round trip as a user runs it, values encrypted at rest and
never printed, the Python API the other layers use."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.errors import SecretError
from shipyard.secrets import SecretStore, get_secret, split_credentials
from shipyard.store import Store

PASSWORD = "pw-Zq81-never-shown"


def _cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args],
        env={**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "200"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_round_trip_never_prints_a_value(home: Path, tmp_path: Path) -> None:
    created = _cli(home, "secret", "create", "db-password", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert "{{secret.db-password}}" in created.stdout
    value_file = tmp_path / "token.txt"
    value_file.write_text("tok-" + PASSWORD)
    assert (
        _cli(home, "secret", "create", "api-token", "--from-file", str(value_file)).returncode == 0
    )
    assert _cli(home, "secret", "create", "short", "-v", "x" + PASSWORD).returncode == 0

    table = _cli(home, "secret", "list")
    listed = _cli(home, "secret", "list", "--output", "json")
    assert table.returncode == 0 and listed.returncode == 0
    assert {row["name"] for row in json.loads(listed.stdout)} == {
        "api-token",
        "db-password",
        "short",
    }
    assert set(json.loads(listed.stdout)[0]) == {"name", "created", "updated"}
    assert "db-password" in table.stdout
    for output in (created, table, listed):
        assert PASSWORD not in output.stdout + output.stderr

    with Store.open() as store:
        assert get_secret("db-password", store) == PASSWORD
        assert SecretStore(store).get("api-token") == "tok-" + PASSWORD
    # Without a store: the one of SHIPYARD_HOME (what a token reader calls).
    assert get_secret("short") == "x" + PASSWORD

    again = _cli(home, "secret", "create", "db-password", "-v", "other")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert _cli(home, "secret", "delete", "db-password").returncode == 0
    gone = _cli(home, "secret", "delete", "db-password")
    assert gone.returncode == 1
    assert "No secret named 'db-password'" in gone.stderr
    assert "Traceback" not in gone.stderr
    with pytest.raises(SecretError, match="shipyard secret create db-password"):
        get_secret("db-password")


def test_values_are_encrypted_at_rest_with_a_private_key(store: Store, home: Path) -> None:
    SecretStore(store).set("token", PASSWORD)
    key = home / "secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for path in home.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_wrong_key_is_named_not_a_garbage_value(store: Store, home: Path) -> None:
    SecretStore(store).set("token", PASSWORD)
    from cryptography.fernet import Fernet

    (home / "secrets.key").write_bytes(Fernet.generate_key())
    with pytest.raises(SecretError, match="another secrets key"):
        SecretStore(store).get("token")


def test_bad_names_are_refused(store: Store) -> None:
    with pytest.raises(SecretError, match="not a valid secret name"):
        SecretStore(store).set("../x y", "v")


@pytest.mark.parametrize(
    ("uri", "stored", "names"),
    [
        ("https://bob:pw@h:8/m.joblib", "https://{{secret.uri-", 1),
        ("s3://b/m?token=T&version=3", "token={{secret.uri-", 1),
        ("/models/m.joblib", "/models/m.joblib", 0),
    ],
)
def test_uri_credentials_split_into_references(uri: str, stored: str, names: int) -> None:
    reference, secrets = split_credentials(uri)
    assert stored in reference
    assert len(secrets) == names
    assert not any(value in reference for value in secrets.values())
    assert ("version=3" in reference) == ("version=3" in uri)
    # Deterministic: the same URI is stored the same way (a redeploy stays a no-op).
    assert split_credentials(uri) == (reference, secrets)

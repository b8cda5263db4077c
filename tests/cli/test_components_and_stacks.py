from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest

from shipyard.errors import ConfigError, SecretError, StackError
from shipyard.secrets import SecretStore
from shipyard.stack import FlavorRegistry
from shipyard.store import Store

from .conftest import invoke, ok, one_red_line, shipyard
from .secret_flavor import VaultConfig, VaultStore

SECRET_SOURCE = f"{VaultStore.__module__}:VaultStore"


@pytest.mark.parametrize("group", ["model-deployer", "artifact-store", "orchestrator"])
def test_component_lifecycle(home: Path, group: str) -> None:
    assert "local" in ok(group, "flavor", "list")
    flavors = json.loads(ok(group, "flavor", "list", "--output", "json"))
    # Other built-in flavors (kserve, seldon, mlflow, ray) may be listed beside it.
    assert "local" in [f["name"] for f in flavors]

    ok(group, "register", "mine", "--flavor", "local")
    listed = json.loads(ok(group, "list", "-O", "json"))
    assert {row["name"]: row["active"] for row in listed} == {"default": True, "mine": False}
    assert "mine" in ok(group, "list")
    described = json.loads(ok(group, "describe", "mine", "-O", "json"))
    assert described["flavor"] == "local"
    assert "mine" in ok(group, "describe", "mine")
    ok(group, "delete", "mine")
    assert [r["name"] for r in json.loads(ok(group, "list", "-O", "json"))] == ["default"]


def test_model_deployer_config_keys_are_validated(home: Path) -> None:
    ok("model-deployer", "register", "w", "--flavor=local", "--workers=3")
    assert json.loads(ok("model-deployer", "describe", "w", "-O", "json"))["config"] == {
        "host": "127.0.0.1",
        "workers": 3,
    }
    ok("model-deployer", "update", "w", "--workers", "2")
    assert json.loads(ok("model-deployer", "describe", "w", "-O", "json"))["config"]["workers"] == 2

    result = invoke("model-deployer", "update", "w", "--wrokers=4")
    assert isinstance(result.exception, ConfigError)
    assert "unknown key 'wrokers'; allowed keys: host, workers" in str(result.exception)
    result = invoke("model-deployer", "register", "x", "--flavor=local", "--workers=many")
    assert isinstance(result.exception, ConfigError)
    assert "bad value 'many' for 'workers'" in str(result.exception)
    result = invoke("model-deployer", "register", "x", "--flavor=gpu")
    assert isinstance(result.exception, StackError)
    assert "No model deployer flavor named 'gpu'; available: " in str(result.exception)
    assert "local" in str(result.exception).rsplit("available: ", 1)[1]


def test_a_wrong_key_is_one_red_line(home: Path) -> None:
    message = one_red_line(
        shipyard(home, "model-deployer", "register", "x", "--flavor=local", "--port=1")
    )
    assert "unknown key 'port'; allowed keys: host, workers" in message


def test_secrets_are_stored_but_never_shown(home: Path) -> None:
    ok(
        "artifact-store",
        "register",
        "v",
        "--flavor",
        "vault",
        "--source",
        SECRET_SOURCE,
        "--token=s3cr3t-value",
    )
    assert "s3cr3t-value" not in ok("artifact-store", "describe", "v")
    shown = json.loads(ok("artifact-store", "describe", "v", "-O", "json"))
    assert shown["config"]["token"] == "**********"
    assert "s3cr3t-value" not in ok("artifact-store", "list", "-O", "json")
    with Store.open() as store:
        record = store.get_component("v", "artifact_store")
        # Stored as a reference to an encrypted secret, resolved only for the live component.
        assert record is not None
        assert record.configuration["token"] == "{{secret.artifact_store.v.token}}"
        live = FlavorRegistry(store).instantiate(record, store)
        assert cast(VaultConfig, live.config).token.get_secret_value() == "s3cr3t-value"
    assert [p for p in home.rglob("*") if p.is_file() and b"s3cr3t-value" in p.read_bytes()] == []
    assert "vault" in ok("artifact-store", "flavor", "list")
    # Typed on the command line: stored all the same, with a note on how to avoid argv.
    typed = invoke("artifact-store", "update", "v", "--token=other-value")
    assert typed.exit_code == 0, typed.output
    assert "--token was typed on the command line" in typed.stderr
    assert "{{secret.NAME}}" in typed.stderr and "other-value" not in typed.output
    by_reference = invoke("artifact-store", "update", "v", "--url=s3://b2")
    assert by_reference.exit_code == 0 and "typed" not in by_reference.stderr


def test_configs_refer_to_secrets_resolved_only_when_used(home: Path) -> None:
    ok("secret", "create", "vault-token", "--value", "tok-1")
    ok("secret", "create", "vault-url", "--value", "s3://private-bucket")
    ok(
        "artifact-store",
        "register",
        "v",
        "--flavor",
        "vault",
        "--source",
        SECRET_SOURCE,
        "--token={{secret.vault-token}}",
        "--url={{secret.vault-url}}",
    )
    shown = json.loads(ok("artifact-store", "describe", "v", "-O", "json"))
    assert shown["config"]["url"] == "{{secret.vault-url}}"
    with Store.open() as store:
        record = store.get_component("v", "artifact_store")
        assert record is not None and record.configuration["token"] == "{{secret.vault-token}}"
        # A changed secret is picked up the next time the component is built.
        SecretStore(store).set("vault-token", "tok-2")
        config = cast(VaultConfig, FlavorRegistry(store).instantiate(record, store).config)
        assert (config.token.get_secret_value(), config.url) == ("tok-2", "s3://private-bucket")
        SecretStore(store).delete("vault-url")
        with pytest.raises(SecretError, match="No secret named 'vault-url'"):
            FlavorRegistry(store).instantiate(record, store)


def test_stack_lifecycle(home: Path) -> None:
    stacks = json.loads(ok("stack", "list", "-O", "json"))
    assert [(s["name"], s["active"]) for s in stacks] == [("default", True)]
    described = json.loads(ok("stack", "describe", "-O", "json"))
    assert described["components"]["model_deployer"]["flavor"] == "local"

    ok("model-deployer", "register", "other", "--flavor=local")
    ok("stack", "register", "s2", "-a", "default", "--orchestrator", "default", "-d", "other")
    assert not json.loads(ok("stack", "describe", "s2", "-O", "json"))["active"]
    assert "s2" in ok("stack", "list")
    ok("stack", "set", "s2")
    assert json.loads(ok("stack", "describe", "-O", "json"))["name"] == "s2"
    assert "model deployer" in ok("stack", "describe")

    result = invoke("stack", "delete", "s2")
    assert isinstance(result.exception, StackError)
    assert "is active and cannot be deleted" in str(result.exception)
    result = invoke("model-deployer", "delete", "other")
    assert "used by the stack(s) s2" in str(result.exception)
    ok("stack", "set", "default")
    ok("stack", "delete", "s2")
    ok("model-deployer", "delete", "other")
    assert [s["name"] for s in json.loads(ok("stack", "list", "-O", "json"))] == ["default"]


def test_stack_errors_are_one_red_line(home: Path) -> None:
    assert one_red_line(shipyard(home, "stack", "delete", "default")).startswith(
        "The stack 'default' is active and cannot be deleted."
    )
    assert "No model deployer named 'nope'" in one_red_line(
        shipyard(
            home,
            "stack",
            "register",
            "x",
            "-a",
            "default",
            "--orchestrator",
            "default",
            "-d",
            "nope",
        )
    )

"""Secrets on a Ray cluster: handed to replicas and batch actors without Ray showing them.

What a Ray actor is created with (its constructor arguments, its ``runtime_env``, a Serve
deployment's options) is kept by Ray and shown: the GCS keeps the actor's task spec, Serve
keeps and reports each deployment's config. So a credential never goes there. The driver
puts each value into the GCS's internal key-value store, under a namespace of ours and a
*scope* (a Serve application's name, or one batch job's random id); the arguments carry
only the ``{{secret.NAME}}`` references and the scope, and the process that loads the model
resolves them there, in memory. Nothing on the cluster lists or logs that store; code
running on the cluster can read it, as it can read anything its replicas hold.

A scope is dropped when its application is deleted or its job ends.

Imported by the driver (the deployer, the batch engine) and by replicas and actors.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from shipyard.errors import SecretError
from shipyard.secrets import has_references, reference, resolve_references

__all__ = [
    "NAMESPACE",
    "drop_secrets",
    "put_secrets",
    "referenced_names",
    "resolve_on_cluster",
    "secret_values",
]

#: The internal-KV namespace holding Shipyard's secrets (not Serve's nor Ray's own).
NAMESPACE = "shipyard-secrets"

_NAMES = re.compile(r"\{\{\s*secret\.([^{}\s]+)\s*\}\}")


def referenced_names(text: str) -> list[str]:
    """The secret names ``text`` refers to, in order, each once."""
    return list(dict.fromkeys(_NAMES.findall(text)))


def secret_values(texts: list[str], resolve: Callable[[str], str]) -> dict[str, str]:
    """name -> value of every secret ``texts`` refer to; ``resolve(text)`` resolves a
    reference (``Service.resolve_secrets``, ``SecretStore.resolve``)."""
    names = [name for text in texts for name in referenced_names(text)]
    return {name: resolve(reference(name)) for name in dict.fromkeys(names)}


def _key(scope: str, name: str) -> str:
    return f"{scope}/{name}"


def put_secrets(scope: str, values: dict[str, str]) -> None:
    """Keep ``values`` on the connected cluster under ``scope`` (replacing old values)."""
    from ray.experimental.internal_kv import _internal_kv_put

    for name, value in values.items():
        _internal_kv_put(_key(scope, name), value, overwrite=True, namespace=NAMESPACE)


def drop_secrets(scope: str) -> None:
    """Forget every value kept under ``scope`` (nothing if there is none)."""
    from ray.experimental.internal_kv import _internal_kv_del

    _internal_kv_del(f"{scope}/", del_by_prefix=True, namespace=NAMESPACE)


def resolve_on_cluster(text: str, scope: str | None) -> str:
    """``text`` with its references replaced by the values kept under ``scope``; run where
    the value is used (a replica, a batch actor), never stored or shown."""
    if scope is None or not has_references(text):
        return text
    from ray.experimental.internal_kv import _internal_kv_get

    def get(name: str) -> str:
        value = _internal_kv_get(_key(scope, name), namespace=NAMESPACE)
        if value is None:
            raise SecretError(
                f"The secret '{name}' was not handed to the Ray cluster (scope {scope}); "
                "deploy or run the job again from the machine that holds the secrets store."
            )
        return bytes(value).decode()

    return resolve_references(text, get)

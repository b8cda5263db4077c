"""The Kubernetes Secret of one model server: every value its pods need that nobody may
read in a manifest, an argument list, a service record or the store.

One Secret per server (``<resource>-shipyard``), created or updated by the deployer
before the resource, owned by the resource (``ownerReferences``: the cluster's garbage
collector removes it with the resource) and deleted by ``delete``. It holds:

* ``auth-token``: the bearer token of the pod's ``shipyard serve`` (``SHIPYARD_SERVER_
  AUTH_TOKEN`` through ``secretKeyRef``); generated once, kept across updates so clients
  holding it keep working;
* ``env-<NAME>``: an ``env`` value that is a ``{{secret.NAME}}`` reference, or whose name
  says it is a credential, resolved from the secrets store here and only here;
* storage credentials found in the model URI's user-info (``https://user:pw@host/...``),
  in KServe's HTTPS credential shape (``https-host`` and ``headers``, read by KServe's
  credential builder from a Secret of the pods' service account) and as the variable
  ``<host>-headers`` the storage initializer reads (Seldon's ``envSecretRefName``).

The manifests carry only ``secretKeyRef``s and the URI without its credentials.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shipyard._redact import has_credentials, mask_credentials, secret_key_name
from shipyard.errors import DeploymentError

__all__ = [
    "TOKEN_KEY",
    "env_entries",
    "new_token",
    "pod_secret_name",
    "secret_manifest",
    "secret_ref",
    "storage_credentials",
]

#: The key of the pods' bearer token in the Secret.
TOKEN_KEY = "auth-token"
#: A dry run's Secret lists its keys here instead of holding values.
KEYS_ANNOTATION = "shipyard.dev/secret-keys"


def pod_secret_name(resource_name: str) -> str:
    """The Secret of the resource ``resource_name`` (at most 40 characters: fits 63)."""
    return f"{resource_name}-shipyard"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def secret_ref(env_name: str, secret: str, key: str) -> dict[str, Any]:
    """An env entry whose value the kubelet reads from ``secret``'s ``key``."""
    return {"name": env_name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def env_entries(
    env: dict[str, str], secret: str, resolve: Callable[[str], str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(container env entries, Secret data) for ``env``: a reference or a secret-named
    variable goes into the Secret (resolved) and is referenced; the rest stays plain."""
    from shipyard.secrets import has_references

    entries: list[dict[str, Any]] = []
    data: dict[str, str] = {}
    for name, value in sorted(env.items()):
        if has_references(value) or (secret_key_name(name) and value):
            key = f"env-{name}"
            data[key] = resolve(value)
            entries.append(secret_ref(name, secret, key))
        else:
            entries.append({"name": name, "value": value})
    return entries, data


def storage_credentials(uri: str, resolve: Callable[[str], str]) -> tuple[str, dict[str, str]]:
    """(the URI the manifest names, the Secret data carrying its credentials).

    ``uri`` is the stored form (credentials already replaced by ``{{secret.NAME}}``).
    Only an HTTP(S) user-info can reach the storage initializer outside the URI (as an
    ``Authorization`` header); any other credential in a URI is refused, naming the way
    that works.
    """
    from shipyard.secrets import has_references

    if not has_references(uri) and not has_credentials(uri):
        return uri, {}
    parts = urlsplit(uri)
    shown = mask_credentials(uri)
    if parts.query and (has_references(parts.query) or has_credentials(f"?{parts.query}")):
        raise DeploymentError(
            f"The model URI {shown} carries a credential in its query string, which a pod "
            "can only get inside the URI (so in the manifest, readable by anyone who can "
            "read the resource). Put the storage credentials in a Kubernetes Secret and "
            "name it with --secret_name (KServe/Seldon storage-initializer variables, e.g. "
            "AWS_ACCESS_KEY_ID), and deploy the URI without them."
        )
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        raise DeploymentError(
            f"The model URI {shown} carries credentials a pod's storage initializer cannot "
            "take from a URI. Put them in a Kubernetes Secret and name it with "
            "--secret_name, and deploy the URI without them."
        )
    userinfo, host = parts.netloc.rsplit("@", 1)
    plain = urlunsplit(parts._replace(netloc=host))
    credential = resolve(userinfo)
    if ":" not in credential:
        credential += ":"  # a bare token as the user name, as curl sends it
    basic = base64.b64encode(credential.encode()).decode()
    headers = json.dumps({"Authorization": f"Basic {basic}"})
    hostname = parts.hostname or host
    return plain, {"https-host": hostname, "headers": headers, f"{hostname}-headers": headers}


def secret_manifest(
    name: str,
    namespace: str,
    labels: dict[str, str],
    data: dict[str, str],
    *,
    masked: bool = False,
) -> dict[str, Any]:
    """The Secret; ``masked`` (a dry run's output) has no value at all, only the names
    of its keys (an annotation): applied by hand it cannot serve a guessable token, and
    the pods wait for the real one (a missing key stops a container from starting)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "type": "Opaque",
    }
    if masked:
        body["metadata"]["annotations"] = {KEYS_ANNOTATION: ",".join(sorted(data))}
    else:
        body["data"] = {
            key: base64.b64encode(value.encode()).decode() for key, value in sorted(data.items())
        }
    return body


def decoded(secret: dict[str, Any] | None, key: str) -> str:
    """The value of ``key`` in a Secret as the API returns it ('' when absent)."""
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value).decode() if value else ""

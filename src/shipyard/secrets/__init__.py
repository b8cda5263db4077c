"""Secrets: named values encrypted at rest, referenced from configs as ``{{secret.NAME}}``.

    from shipyard.secrets import get_secret, SecretStore
    token = get_secret("api-token")                  # the store of SHIPYARD_HOME
    SecretStore(store).set("api-token", "s3cr3t")    # a store you opened

``shipyard secret create|list|delete`` is the CLI. Values never appear in listings, logs
or errors; see ``_crypto`` for where the key lives and why.
"""

from shipyard.secrets._refs import check_name, has_references, reference, resolve_references
from shipyard.secrets._store import SecretInfo, SecretStore, get_secret
from shipyard.secrets._uri import reference_form, split_credentials

__all__ = [
    "SecretInfo",
    "SecretStore",
    "check_name",
    "get_secret",
    "has_references",
    "reference",
    "reference_form",
    "resolve_references",
    "split_credentials",
]

"""Credentials inside a model URI, moved into the secrets store.

``https://bob:pw@host/m.joblib`` is stored as ``https://{{secret.uri-1a2b3c4d5e6f}}@host/
m.joblib`` and ``s3://b/m?token=T`` as ``s3://b/m?token={{secret.uri-1a2b3c4d5e6f-token}}``.
The name is derived from the URI without its credentials, so deploying the same URI again
gives the same stored config (a redeploy stays a no-op) and the secret is updated in place.
"""

from __future__ import annotations

import hashlib
import re

from shipyard._redact import MASK, mask_credentials
from shipyard.secrets._refs import has_references, reference

__all__ = ["reference_form", "split_credentials"]

_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<cred>[^/@\s?#]+)@")
_QUERY_VALUE = re.compile(r"(?P<head>[?&](?P<param>[A-Za-z0-9_.-]+)=)(?P<value>[^&#\s]+)")


def split_credentials(uri: str) -> tuple[str, dict[str, str]]:
    """``uri`` with its credentials replaced by references, and the secrets to store
    (name -> value). A URI without credentials comes back unchanged with no secrets."""
    masked = mask_credentials(uri)
    if masked == uri:
        return uri, {}
    stem = "uri-" + hashlib.sha256(masked.encode()).hexdigest()[:12]
    secrets: dict[str, str] = {}
    result = uri
    userinfo = _USERINFO.match(result)
    if userinfo and not has_references(userinfo.group("cred")):
        secrets[stem] = userinfo.group("cred")
        result = f"{userinfo.group('head')}{reference(stem)}@{result[userinfo.end() :]}"

    def _query(match: re.Match[str]) -> str:
        # Only what the masking rule hides is a credential (``?version=3`` stays).
        shown = mask_credentials(match.group(0))
        if not shown.endswith(f"={MASK}") or has_references(match.group("value")):
            return match.group(0)
        param = re.sub(r"[^A-Za-z0-9_.-]", "", match.group("param")).lower()[:40] or "param"
        name = f"{stem}-{param}"
        secrets[name] = match.group("value")
        return f"{match.group('head')}{reference(name)}"

    return _QUERY_VALUE.sub(_query, result), secrets


def reference_form(uri: str) -> str:
    """What ``uri`` is stored as (``split_credentials`` without the secrets): lets a
    server's report of the URI it loaded be compared with the registry's."""
    return split_credentials(uri)[0]

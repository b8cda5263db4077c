"""The one rule that hides credentials in text shown to people or written to logs.

Every message, table, JSON output and log banner that may quote a URI goes through
:func:`mask_credentials`; every config shown by key goes through :func:`mask_fields`.
A credential is:

* the user-info of a URL (``https://bob:pw@host`` -> ``https://***@host``, a bare
  token ``https://tok@host`` too);
* the value of a query parameter whose name says it is one (``?token=``, ``&sig=``,
  ``X-Amz-Signature=``, ``access_key=``, ...).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "FIELD_MASK",
    "MASK",
    "has_credentials",
    "mask_credentials",
    "mask_fields",
    "mask_nested",
    "secret_key_name",
]

#: What a hidden part of a URL is replaced by.
MASK = "***"
#: What a hidden config value is replaced by (pydantic's ``SecretStr`` shows the same).
FIELD_MASK = "**********"

# ``scheme://userinfo@``: userinfo has no '/', '@' or whitespace (RFC 3986).
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s?#]+@")
# Names of configuration keys and query parameters that hold a credential.
_SECRET_WORDS = (
    r"secret|password|passwd|pwd|token|api[_-]?key|access[_-]?key|credential|"
    r"signature|sig|sas|auth"
)
_SECRET_KEY = re.compile(rf"({_SECRET_WORDS})", re.I)
_SECRET_QUERY = re.compile(
    rf"(?P<head>[?&](?:[A-Za-z0-9_.-]*?(?:{_SECRET_WORDS})[A-Za-z0-9_.-]*)=)[^&#\s'\"]+",
    re.I,
)


def secret_key_name(name: str) -> bool:
    """Whether a config key or query parameter called ``name`` holds a credential."""
    return bool(_SECRET_KEY.search(name))


def has_credentials(text: str) -> bool:
    """Whether ``text`` holds a URL credential :func:`mask_credentials` would hide."""
    return bool(_USERINFO.search(text) or _SECRET_QUERY.search(text))


def mask_credentials(text: str) -> str:
    """``text`` with every URL credential replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text  # the common case, no regex
    text = _USERINFO.sub(rf"\g<head>{MASK}@", text)
    return _SECRET_QUERY.sub(rf"\g<head>{MASK}", text)


def mask_fields(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with values of secret-named keys hidden and URL credentials masked (a
    fallback where no schema marks the secret fields)."""
    shown: dict[str, Any] = {}
    for key, value in data.items():
        if secret_key_name(key) and value and not _is_reference(value):
            shown[key] = FIELD_MASK
        elif isinstance(value, str):
            shown[key] = mask_credentials(value)
        else:
            shown[key] = value
    return shown


def mask_nested(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with URL credentials masked in every
    string, however deep: for records whose shape no schema fixes (step parameters,
    metadata, error text)."""
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, dict):
        return {key: mask_nested(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_nested(item) for item in value]
    return value


def _is_reference(value: Any) -> bool:
    # ``{{secret.name}}`` names a secret; the name is not secret and helps the reader.
    return isinstance(value, str) and bool(re.fullmatch(r"\{\{\s*secret\.[^{}]+\}\}", value))

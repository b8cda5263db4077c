"""``{{secret.NAME}}``: how configs refer to a secret without holding it."""

from __future__ import annotations

import re
from collections.abc import Callable

from shipyard.errors import SecretError

__all__ = ["NAME", "check_name", "has_references", "reference", "resolve_references"]

#: A secret's name: what may follow ``secret.`` in a reference.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REFERENCE = re.compile(r"\{\{\s*secret\.([^{}\s]+)\s*\}\}")


def check_name(name: str) -> str:
    """``name`` if it is a valid secret name, else SecretError saying what is allowed."""
    if not NAME.fullmatch(name):
        raise SecretError(
            f"{name!r} is not a valid secret name: use letters, digits, '-', '_' and '.', "
            "start with a letter or digit, at most 128 characters."
        )
    return name


def reference(name: str) -> str:
    """The text that stands for the secret ``name`` in a config: ``{{secret.name}}``."""
    return f"{{{{secret.{check_name(name)}}}}}"


def has_references(text: str) -> bool:
    return "{{" in text and bool(_REFERENCE.search(text))


def resolve_references(text: str, get: Callable[[str], str]) -> str:
    """``text`` with every ``{{secret.NAME}}`` replaced by ``get(NAME)``."""
    if not has_references(text):
        return text
    return _REFERENCE.sub(lambda match: get(check_name(match.group(1))), text)

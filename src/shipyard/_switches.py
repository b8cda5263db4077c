"""The environment switches that turn a fast path off (``SHIPYARD_TREES``,
``SHIPYARD_FAST_JSON``, ``SHIPYARD_FAST_HTTP``): one rule for what "off" is."""

from __future__ import annotations

import os

__all__ = ["switched_off"]

_OFF = ("off", "0", "false", "no")


def switched_off(variable: str) -> bool:
    """Whether ``variable`` is set to off, 0, false or no (any case, spaces ignored)."""
    return os.environ.get(variable, "").strip().lower() in _OFF

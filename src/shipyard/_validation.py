"""pydantic's ``ValidationError`` as text for people: the one formatter every layer uses.

Each problem is named by its key (dotted for nested keys) and says what is wrong; our own
validators' messages are kept as written (pydantic's ``Value error, `` prefix is noise).
Callers choose how a key is shown (a config key, a CLI option) and the sentence around.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

__all__ = ["Problem", "describe_validation_error", "validation_problems"]


@dataclass(frozen=True)
class Problem:
    """One mistake in the validated data."""

    loc: tuple[str | int, ...]
    key: str
    """``loc`` dotted; empty for a whole-object check."""
    type: str
    """pydantic's error type (``missing``, ``extra_forbidden``, ``value_error``, ...)."""
    message: str
    input: Any


def validation_problems(err: ValidationError) -> list[Problem]:
    problems = []
    for item in err.errors():
        error = item.get("ctx", {}).get("error")
        if item["type"] == "value_error" and error is not None:
            message = str(error)
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        loc = tuple(item["loc"])
        key = ".".join(str(part) for part in loc)
        problems.append(Problem(loc, key, item["type"], message, item.get("input")))
    return problems


def _key_line(problem: Problem, top: str) -> str:
    return f"{problem.key or top}: {problem.message}" if problem.key or top else problem.message


def describe_validation_error(
    err: ValidationError,
    *,
    allowed: Iterable[str] | None = None,
    top: str = "",
    line: Callable[[Problem], str] | None = None,
    sep: str = "; ",
) -> str:
    """Every problem of ``err``, joined by ``sep``.

    With ``allowed`` (a config's keys) each line says what is allowed: ``unknown key 'x';
    allowed keys: a, b``, ``missing required key 'x'``, ``bad value 3 for 'x': ...``.
    Otherwise a line is ``key: message`` (``top`` names a whole-object problem; empty
    leaves the message alone); ``line`` replaces the default line for every problem.
    """
    problems = validation_problems(err)
    if line is not None:
        return sep.join(line(p) for p in problems)
    if allowed is None:
        return sep.join(_key_line(p, top) for p in problems)
    shown = ", ".join(allowed) or "(none)"
    lines = []
    for p in problems:
        key = p.key or top or "(config)"
        if p.type == "extra_forbidden":
            lines.append(f"unknown key '{key}'; allowed keys: {shown}")
        elif p.type == "missing":
            lines.append(f"missing required key '{key}'")
        else:
            lines.append(f"bad value {p.input!r} for '{key}': {p.message}")
    return sep.join(lines)

"""Routes compiled once; a path that matches with another method is 405 with ``Allow``.

As Starlette's router does: every route is compiled when the app is made (a plain path
into a dict, a path with ``{name}`` parameters into one regular expression), a request
is matched once, and a path some route matches with a different method answers 405 with
the methods it does take, instead of 404. ``GET`` routes take ``HEAD`` too (load balancers
probe health with it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from shipyard.errors import MethodNotAllowedError, NotFoundError

__all__ = ["Route", "Router"]

_PARAM = re.compile(r"{([a-z_]+)}")


@dataclass(frozen=True)
class Route:
    """``path`` may hold ``{param}`` parts (one path segment each, percent-decoded)."""

    path: str
    method: str
    endpoint: Any
    protocol: str = "other"
    """The metrics label of requests on this route (``other``: not counted)."""
    regex: re.Pattern[str] | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        if "{" in self.path:
            pattern = ""
            last = 0
            for found in _PARAM.finditer(self.path):
                pattern += re.escape(self.path[last : found.start()])
                pattern += f"(?P<{found.group(1)}>[^/]+)"
                last = found.end()
            pattern += re.escape(self.path[last:])
            object.__setattr__(self, "regex", re.compile(f"^{pattern}$"))

    @property
    def methods(self) -> tuple[str, ...]:
        return ("GET", "HEAD") if self.method == "GET" else (self.method,)


class Router:
    """The compiled routes of one app."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._dynamic: list[Route] = []
        for route in routes:
            if route.regex is None:
                by_method = self._static.setdefault(route.path, {})
                for method in route.methods:
                    by_method[method] = route
            else:
                self._dynamic.append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for ``method path`` and its decoded parameters; ``NotFoundError``
        when no route has this path, ``MethodNotAllowedError`` (with ``allow``) when
        routes have it with other methods."""
        static = self._static.get(path)
        if static is not None:
            route = static.get(method)
            if route is not None:
                return route, {}
            allowed = list(static)
        else:
            allowed = []
        for route in self._dynamic:
            found = route.regex.match(path) if route.regex is not None else None
            if found is None:
                continue
            if method in route.methods:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
            allowed.extend(m for m in route.methods if m not in allowed)
        if allowed:
            shown = ", ".join(allowed)
            raise MethodNotAllowedError(
                f"{method} is not allowed on {path}; use {' or '.join(allowed)}.", shown
            )
        raise NotFoundError(f"No route for {method} {path}; see /openapi.json for the routes.")

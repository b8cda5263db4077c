"""Helpers shared by the command groups: store, output, ``--key=value``, JSON arguments."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from shipyard.errors import BadRequestError, ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from shipyard.store import Store

__all__ = [
    "EXTRA_ARGS",
    "OutputFormat",
    "OutputOption",
    "PredictionsOutputOption",
    "mask_secrets",
    "open_store",
    "parse_key_values",
    "print_json",
    "print_manifests",
    "print_predictions",
    "print_table",
    "read_json_argument",
    "resolve_uri_secrets",
]

#: Lets a command take arbitrary ``--key=value`` options (component configs).
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"


OutputOption = typer.Option(
    OutputFormat.table, "--output", "-O", help="table for people, json for scripts."
)

#: Predictions print as JSON unless a person asks for a table.
PredictionsOutputOption = typer.Option(
    OutputFormat.json, "--output", "-O", help="json (the default) for scripts, table for people."
)


def print_predictions(result: dict[str, Any], output: OutputFormat) -> None:
    """``{"predictions": [...]}`` (or a V2 answer's ``outputs``) as JSON, or one table row
    per prediction."""
    if output is OutputFormat.json:
        print_json(result)
        return
    from rich.table import Table

    if "predictions" in result:
        columns = {"prediction": result["predictions"]}
    else:
        columns = {o["name"]: o.get("data", []) for o in result.get("outputs", [])}
    if any(isinstance(v, dict) for v in columns.values()):  # named outputs (label, ...)
        columns = {k: v for value in columns.values() for k, v in value.items()}
    table = Table(
        *(["#", *columns]), title=str(result.get("model") or result.get("model_name") or "")
    )
    count = max((len(v) for v in columns.values() if isinstance(v, list)), default=0)
    for i in range(count):
        cells = [v[i] if isinstance(v, list) and i < len(v) else "" for v in columns.values()]
        table.add_row(str(i), *(json.dumps(c) if not isinstance(c, str) else c for c in cells))
    print_table(table)


@contextmanager
def open_store() -> Iterator[Store]:
    from shipyard.store import Store

    store = Store.open()
    try:
        yield store
    finally:
        store.close()


def resolve_uri_secrets(uri: str, store: Store | None = None) -> str:
    """``uri`` with its ``{{secret.NAME}}`` references replaced by the secrets' values.

    So a URI with credentials (``https://user:pw@host/m``, a presigned URL) is stored once
    with ``shipyard secret create`` and named on the command line by reference, never
    typed where ``ps`` and the shell history show it. Messages mask the value.
    """
    from shipyard.secrets import has_references, resolve_references

    if not has_references(uri):
        return uri
    from shipyard.secrets import get_secret

    if store is not None:
        return resolve_references(uri, lambda name: get_secret(name, store=store))
    with open_store() as opened:
        return resolve_references(uri, lambda name: get_secret(name, store=opened))


def parse_key_values(args: Sequence[str]) -> dict[str, Any]:
    """``['--port=8000', '--host', 'x']`` -> ``{'port': '8000', 'host': 'x'}``.

    Values that look like JSON lists or objects are parsed; pydantic coerces the rest.
    """
    values: dict[str, Any] = {}
    items = list(args)
    while items:
        item = items.pop(0)
        if not item.startswith("--") or item == "--":
            raise ConfigError(f"Unexpected argument '{item}'; give configuration as --key=value.")
        key, sep, value = item[2:].partition("=")
        if not sep:
            if not items or items[0].startswith("--"):
                raise ConfigError(f"The option '--{key}' needs a value: --{key}=VALUE.")
            value = items.pop(0)
        if value[:1] in "[{":
            try:
                values[key.replace("-", "_")] = json.loads(value)
                continue
            except json.JSONDecodeError:
                pass
        values[key.replace("-", "_")] = value
    return values


def mask_secrets(data: dict[str, Any]) -> dict[str, Any]:
    """Hide values whose key names a secret (a fallback when no schema says so) and URL
    credentials (the one rule: ``shipyard._redact``)."""
    from shipyard._redact import mask_fields

    return mask_fields(data)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def print_manifests(manifests: list[dict[str, Any]], output: OutputFormat) -> None:
    """Manifests as a YAML stream (``kubectl apply -f -`` takes it), or a JSON list."""
    if output is OutputFormat.json:
        print_json(manifests)
        return
    import yaml

    typer.echo(yaml.safe_dump_all(manifests, sort_keys=False).rstrip())


def print_table(table: Table) -> None:
    from rich.console import Console

    Console(soft_wrap=True).print(table)


def read_json_argument(data: str, what: str, examples: str) -> Any:
    """Parse ``data`` as JSON, or the file it names as ``@path``; ``what`` and ``examples``
    finish the error messages ("The {what} is not JSON ... Give {examples}")."""
    text = data
    if data.startswith("@"):
        path = Path(data[1:]).expanduser()
        try:
            text = path.read_text()
        except OSError as err:
            raise BadRequestError(f"Cannot read the {what} from {path}: {err}") from err
    try:
        return json.loads(text)
    except ValueError as err:
        raise BadRequestError(
            f"The {what} is not JSON ({err}). Give {examples}, or @file.json."
        ) from err

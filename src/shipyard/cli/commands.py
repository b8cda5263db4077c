"""Which command groups the CLI has. Each module owns one group or command."""

from __future__ import annotations

import importlib

import typer

# (module, attribute) pairs; an attribute that is a Typer app becomes a group,
# a function becomes a top-level command.
_GROUPS: list[tuple[str, str, str]] = [
    # module, attribute, name
    ("shipyard.cli.serve", "serve", "serve"),
    ("shipyard.cli.pipeline", "pipeline", "pipeline"),
    ("shipyard.cli.batch", "batch", "batch"),
    ("shipyard.cli.stack", "stack", "stack"),
    ("shipyard.cli.components", "artifact_store", "artifact-store"),
    ("shipyard.cli.components", "orchestrator", "orchestrator"),
    ("shipyard.cli.model_deployer", "model_deployer", "model-deployer"),
    ("shipyard.cli.deploy", "deploy", "deploy"),
    ("shipyard.cli.predict", "predict", "predict"),
    ("shipyard.cli.model", "model", "model"),
    ("shipyard.cli.build", "build", "build"),
    ("shipyard.cli.kserve", "kserve", "kserve"),
    ("shipyard.cli.secret", "secret", "secret"),
]


def register(app: typer.Typer) -> None:
    for module_name, attribute, name in _GROUPS:
        module = importlib.import_module(module_name)
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name=name)(target)

"""``shipyard build MODEL --output DIR``: a container build context for a model server.

The context holds the model directory, Shipyard's own code, pinned requirements and a
Dockerfile whose entrypoint is ``shipyard serve``; any container engine builds it
(``docker build DIR``). The image is what the kserve runtime and Seldon's custom
predictors run.
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["build"]


def build(
    model_uri: str = typer.Argument(..., help="Model directory, file or URL."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the context to."),
    base_image: str = typer.Option(
        "python:3.11-slim", "--base-image", help="Image to start from (Python 3.11+)."
    ),
    name: str | None = typer.Option(None, "--name", help="Model name the server uses."),
    force: bool = typer.Option(False, "--force", help="Overwrite a non-empty --output."),
) -> None:
    """Write a Dockerfile, pinned requirements, the model and the server code to DIR."""
    from shipyard.deployers._kubernetes._context import write_build_context

    context = write_build_context(model_uri, output, base_image=base_image, name=name, force=force)
    typer.echo(f"Build context written to {context.root}")
    typer.echo(f"  model:        {context.model_dir}")
    typer.echo(f"  requirements: {len(context.requirements)} pinned packages")
    typer.echo(f"Build it with a container engine: docker build -t IMAGE {context.root}")

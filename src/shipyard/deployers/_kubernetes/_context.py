"""The build context of a model server image: Dockerfile, requirements, model, code."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from shipyard.errors import ConfigError

__all__ = ["ENTRYPOINT", "BuildContext", "pinned_requirements", "write_build_context"]

#: The image's entrypoint: the `shipyard` command (its first argument picks `serve`).
ENTRYPOINT = ["python", "-m", "shipyard.cli.main"]
#: Where the context puts Shipyard's code and the model inside the image.
APP_DIR = "/app"
MODEL_DIR = "/app/model"

_DOCKERFILE = """\
# Built by `shipyard build`. The model server: `shipyard serve` on {model_dir}.
FROM {base_image}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH={app_dir}
WORKDIR {app_dir}
COPY requirements.txt {app_dir}/requirements.txt
RUN pip install --no-cache-dir -r {app_dir}/requirements.txt
COPY shipyard {app_dir}/shipyard
COPY model {model_dir}
RUN useradd --uid 1000 --create-home shipyard
USER 1000
EXPOSE 8080 8081
ENTRYPOINT {entrypoint}
CMD {command}
"""

_EXTRA = re.compile(r"extra\s*==\s*['\"]([^'\"]+)['\"]")


@dataclass
class BuildContext:
    root: Path
    model_dir: Path
    requirements: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)


def pinned_requirements(extras: tuple[str, ...] = ("serve",)) -> list[str]:
    """Shipyard's core and ``extras`` requirements, pinned to the versions installed here
    (what the tests ran against)."""
    pins: dict[str, str] = {}
    for requirement in metadata.requires("shipyard") or []:
        spec, _, marker = requirement.partition(";")
        found = _EXTRA.search(marker)
        if found and found.group(1) not in extras:
            continue
        if "sys_platform" in marker and "win32" not in marker:
            continue
        name = re.split(r"[\s\[<>=!~;]", spec.strip(), maxsplit=1)[0]
        try:
            pins[name.lower()] = f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            pins[name.lower()] = spec.strip()
    return sorted(pins.values(), key=str.lower)


def write_build_context(
    model_uri: str,
    output: Path,
    *,
    base_image: str = "python:3.11-slim",
    name: str | None = None,
    force: bool = False,
) -> BuildContext:
    """Write the context for ``model_uri`` into ``output``."""
    import json

    import shipyard
    from shipyard.models import resolve_model_uri
    from shipyard.models._detect import detect_model

    root = Path(output).expanduser().resolve()
    if root.exists() and any(root.iterdir()) and not force:
        raise ConfigError(f"{root} is not empty; pick another --output or pass --force.")
    source, manifest = detect_model(resolve_model_uri(model_uri))
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    model_dir = root / "model"
    shutil.copytree(source, model_dir)
    package = Path(shipyard.__file__).parent
    shutil.copytree(package, root / "shipyard", ignore=shutil.ignore_patterns("__pycache__"))
    requirements = pinned_requirements()
    known = {r.split("==")[0].lower() for r in requirements}
    requirements += [r for r in manifest.requirements if r.split("==")[0].lower() not in known]
    (root / "requirements.txt").write_text("\n".join(requirements) + "\n")
    served = name or manifest.name or Path(str(source)).name
    command = [
        "serve", MODEL_DIR, "--name", served, "--host", "0.0.0.0",
        "--http-port", "8080", "--grpc-port", "8081",
        # Who may reach the pod is the cluster's job (NetworkPolicy, the mesh, the
        # platform's gateway); see "Security" in the README.
        "--insecure",
    ]  # fmt: skip
    (root / "Dockerfile").write_text(
        _DOCKERFILE.format(
            base_image=base_image,
            app_dir=APP_DIR,
            model_dir=MODEL_DIR,
            entrypoint=json.dumps(ENTRYPOINT),
            command=json.dumps(command),
        )
    )
    (root / ".dockerignore").write_text("**/__pycache__\n")
    return BuildContext(root, model_dir, requirements, list(ENTRYPOINT), command)

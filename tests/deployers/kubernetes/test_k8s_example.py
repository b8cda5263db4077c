"""examples/kubernetes/README.md: its commands, run as written, print exactly the
dry-run output it shows (the UUID, the digest and the folder normalised)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import cli

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "kubernetes"


def _commands(readme: str, first: str) -> list[list[str]]:
    """The shell commands of the code block that starts with ``first``."""
    block = readme[readme.index(first) :].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [shlex.split(line.split("  #", 1)[0]) for line in joined.splitlines() if line.strip()]


def test_the_readme_dry_run_output_is_what_the_commands_print(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (EXAMPLE / "README.md").read_text()
    shown = readme.split("<!-- dry-run-output -->\n```yaml\n", 1)[1].split("\n```", 1)[0]
    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, str(EXAMPLE / "save_model.py")], check=True, cwd=tmp_path)

    for command in _commands(readme, "python examples/kubernetes/save_model.py")[1:]:
        assert command[0] == "shipyard"
        cli(*command[1:])
    [deploy] = _commands(readme, "shipyard deploy iris-model --name iris --dry-run")
    printed = cli(*deploy[1:])

    printed = re.sub(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", printed
    )
    printed = re.sub(r"\b(iris)-[0-9a-f]{8}\b", r"\1-<uuid8>", printed)
    printed = re.sub(r"/iris/[0-9a-f]{16}", "/iris/<digest>", printed)
    printed = printed.replace(str(tmp_path.resolve()), "$PWD")
    assert printed.strip() == shown.strip()
    # A dry run uploads nothing: no model directory with MLServer's settings anywhere here.
    assert list(tmp_path.glob("**/model-settings.json")) == []

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard.errors import ConfigError, StackError
from shipyard.stack import (
    ComponentType,
    FlavorRegistry,
    get_active_stack,
    register_component,
    register_stack,
    update_component,
)
from shipyard.stack.local_components import LocalArtifactStore
from shipyard.store import Store

_CUSTOM = '''
from shipyard.stack import ComponentConfig, ComponentType, Flavor, StackComponent


class NoteConfig(ComponentConfig):
    text: str = "hello"
    times: int = 1


class NoteOrchestrator(StackComponent):
    """Says its note."""

    TYPE = ComponentType.ORCHESTRATOR
    FLAVOR_NAME = "note"
    CONFIG_CLASS = NoteConfig

    def say(self) -> str:
        return self.config.text * self.config.times


FLAVOR = Flavor(
    name="note-ep",
    type=ComponentType.ORCHESTRATOR,
    config_class=NoteConfig,
    implementation=NoteOrchestrator,
    description="From an entry point.",
)


def broken():
    raise RuntimeError("plug-in exploded")
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution with a module and ``shipyard.flavors`` entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "note_plugin.py").write_text(_CUSTOM)
    dist = site / "note_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: note-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[shipyard.flavors]\nnote-ep = note_plugin:FLAVOR\nbad = note_plugin:broken\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return "note_plugin"


def test_builtin_flavors_are_listed_without_importing_them() -> None:
    code = textwrap.dedent(
        """
        import sys
        import shipyard.stack
        assert "sqlalchemy" not in sys.modules, "importing shipyard.stack opened the store"
        from shipyard.stack import FlavorRegistry
        names = sorted((f.type.value, f.name) for f in FlavorRegistry().list())
        print(names)
        prefixes = ("shipyard.deployers", "shipyard.stack.local")
        loaded = [m for m in sys.modules if m.startswith(prefixes)]
        print(loaded)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "('artifact_store', 'local')" in out[0]
    assert "('model_deployer', 'local')" in out[0]
    assert "('orchestrator', 'local')" in out[0]
    assert out[1] == "[]"


def test_unknown_key_names_the_key_and_what_is_allowed(store: Store) -> None:
    flavor = FlavorRegistry(store).get(ComponentType.ARTIFACT_STORE, "local")
    with pytest.raises(ConfigError) as info:
        flavor.validate_config({"pth": "/x"})
    assert "unknown key 'pth'; allowed keys: path" in str(info.value)
    assert "artifact store flavor 'local'" in str(info.value)


def test_bad_value_names_the_key(store: Store) -> None:
    registry = FlavorRegistry(store)
    with pytest.raises(ConfigError, match=r"bad value \[1, 2\] for 'path'"):
        register_component(
            store, registry, ComponentType.ARTIFACT_STORE, "x", "local", {"path": [1, 2]}
        )
    assert store.get_component("x", "artifact_store") is None


def test_unknown_flavor_lists_the_available_ones(store: Store) -> None:
    with pytest.raises(StackError, match="No orchestrator flavor named 'k8s'; available: local"):
        FlavorRegistry(store).get(ComponentType.ORCHESTRATOR, "k8s")


def test_update_merges_and_validates(store: Store, tmp_path: Path) -> None:
    registry = FlavorRegistry(store)
    register_component(store, registry, ComponentType.ARTIFACT_STORE, "disk", "local", {})
    record = update_component(
        store, registry, ComponentType.ARTIFACT_STORE, "disk", {"path": str(tmp_path)}
    )
    assert record.configuration == {"path": str(tmp_path)}
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        update_component(store, registry, ComponentType.ARTIFACT_STORE, "disk", {"colour": 1})
    register_stack(
        store,
        "disk-stack",
        {ComponentType.ARTIFACT_STORE: "disk", ComponentType.ORCHESTRATOR: "default"},
        activate=True,
    )
    stack = get_active_stack(store)
    assert stack.name == "disk-stack"
    artifact_store = stack.artifact_store
    assert isinstance(artifact_store, LocalArtifactStore)
    assert artifact_store.path == tmp_path
    assert stack.model_deployer is None


def test_a_stack_of_unknown_components_is_refused(store: Store) -> None:
    with pytest.raises(StackError, match=r"No model deployer named 'ghost'.*register ghost"):
        register_stack(store, "s", {ComponentType.MODEL_DEPLOYER: "ghost"})
    assert store.get_stack("s") is None


def test_default_stack_artifact_store_lives_in_home(store: Store, home: Path) -> None:
    artifact_store = get_active_stack(store).artifact_store
    assert isinstance(artifact_store, LocalArtifactStore)
    assert artifact_store.path == home / "artifacts"
    assert Path(artifact_store.uri("run1")).is_dir()


def test_entry_point_flavors_are_found_and_a_broken_one_is_reported(
    store: Store, plugin: str
) -> None:
    registry = FlavorRegistry(store)
    flavor = registry.get(ComponentType.ORCHESTRATOR, "note-ep")
    assert flavor.origin.startswith("entry point 'note-ep'")
    record = register_component(
        store, registry, ComponentType.ORCHESTRATOR, "n", "note-ep", {"times": "3"}
    )
    component = registry.instantiate(record, store)
    assert component.say() == "hellohellohello"  # type: ignore[attr-defined]
    with pytest.raises(StackError, match="plug-in exploded"):
        registry.get(ComponentType.ORCHESTRATOR, "missing")


def test_source_flavors_persist_in_the_store(store: Store, plugin: str) -> None:
    flavor = FlavorRegistry(store).register_source(
        f"{plugin}:NoteOrchestrator", ComponentType.ORCHESTRATOR
    )
    assert (flavor.name, flavor.description) == ("note", "Says its note.")
    # A new registry (another process, later) still knows it.
    again = FlavorRegistry(store)
    assert (
        again.get(ComponentType.ORCHESTRATOR, "note").origin
        == f"source '{plugin}:NoteOrchestrator'"
    )
    with pytest.raises(StackError, match="is a orchestrator flavor, not a model deployer"):
        again.register_source(f"{plugin}:NoteOrchestrator", ComponentType.MODEL_DEPLOYER)
    with pytest.raises(StackError, match="has no attribute 'Nope'"):
        again.register_source(f"{plugin}:Nope")
    with pytest.raises(StackError, match="not an import path"):
        again.register_source("no_colon")

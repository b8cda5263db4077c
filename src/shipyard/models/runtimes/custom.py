"""Custom predictors: the user's class, imported from the source file carried in the model dir.

``save_model(predictor=MyPredictor)`` copies the module that defines ``MyPredictor`` into
``<model dir>/code/``; here it is imported *by path*, so the model directory loads in any
process, without the author's ``sys.path``.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from shipyard._imports import attribute_of, split_import_path
from shipyard.errors import ConfigError, ModelLoadError
from shipyard.models._code import CODE_DIR
from shipyard.models.manifest import ModelManifest

__all__ = [
    "SaveDuringImportError",
    "import_predictor_class",
    "importing_predictor_source",
    "instantiate_predictor",
]

# The predictor source being imported in this thread/context, if any: save_model checks it
# so a script that calls save_model at module level fails once, clearly, instead of each
# import saving (and importing) yet another copy of itself.
_IMPORTING: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "shipyard_importing_predictor", default=None
)


class SaveDuringImportError(ConfigError):
    """save_model was called while the predictor's own module was being imported."""


def importing_predictor_source() -> Path | None:
    """The predictor source file being imported right now (in this context), or None."""
    return _IMPORTING.get()


def _import_file(path: Path, module_name: str) -> ModuleType:
    resolved = path.resolve()
    source = resolved.read_bytes()
    # Keyed by location *and* content: a model directory overwritten in place (a new
    # version deployed to the same path) must run its new code, not the cached module.
    digest = hashlib.sha256(str(resolved).encode() + b"\0" + source).hexdigest()[:12]
    existing = sys.modules.get(module_name)
    if existing is not None and getattr(existing, "__shipyard_digest__", None) == digest:
        return existing
    # Under its own name when that is free, so pickles that reference classes of this
    # module (a transformer defined beside the predictor) find it; otherwise a private
    # name keyed by the digest, so two model dirs with a module of the same name coexist.
    if "." not in module_name and module_name not in sys.modules:
        name = module_name
    else:
        name = f"_shipyard_predictor_{digest}_{module_name.replace('.', '_')}"
        if name in sys.modules:
            return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None:
        raise ModelLoadError(f"Cannot import the predictor source {path}: not a Python file.")
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__shipyard_digest__"] = digest
    sys.modules[name] = module
    token = _IMPORTING.set(path)
    try:
        # Compiled from the bytes just hashed: no __pycache__ written into the model
        # directory (often read-only) and no stale bytecode after an in-place update.
        exec(compile(source, str(resolved), "exec"), module.__dict__)
    except SaveDuringImportError:
        sys.modules.pop(name, None)
        raise
    except ImportError as err:
        sys.modules.pop(name, None)
        raise ModelLoadError(
            f"Importing the predictor source {path} failed: {err}. The module is imported "
            "on its own: use absolute imports of installed packages only (or ship your "
            "helpers with code_paths=...), and list packages in requirements=..."
        ) from err
    except Exception as err:
        sys.modules.pop(name, None)
        raise ModelLoadError(
            f"Importing the predictor source {path} raised {type(err).__name__}: {err}"
        ) from err
    finally:
        _IMPORTING.reset(token)
    return module


def import_predictor_class(model_dir: Path, manifest: ModelManifest) -> type[Any]:
    """Import the predictor class a manifest names, from its carried source if it has one."""
    if not manifest.predictor:
        raise ModelLoadError(f"The manifest in {model_dir} names no predictor class.")
    module_name, qualname = split_import_path(manifest.predictor, error=ModelLoadError, dotted=True)
    if manifest.code_paths:
        # Helper modules the predictor imports by plain name, as on the author's machine.
        code_dir = str((Path(model_dir) / CODE_DIR).resolve())
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
    if manifest.predictor_source:
        source = Path(model_dir) / manifest.predictor_source
        if not source.is_file():
            raise ModelLoadError(
                f"The predictor source {manifest.predictor_source!r} named in "
                f"{model_dir}/shipyard.yaml is missing. Save the model again with "
                "save_model(..., predictor=...)."
            )
        module = _import_file(source, module_name)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ModelLoadError(
                f"Cannot import predictor module {module_name!r} for {model_dir}: {err}. "
                "Install the package that provides it, or save the model with "
                "save_model(..., predictor=YourClass) so its source travels with it."
            ) from err
    obj = attribute_of(
        module, qualname, f"{manifest.predictor} in {model_dir}", error=ModelLoadError
    )
    if not isinstance(obj, type):
        raise ModelLoadError(f"The predictor {manifest.predictor!r} is not a class.")
    return obj


def instantiate_predictor(cls: type[Any], ref: str) -> Any:
    """Create the user's predictor with no arguments and check it can predict."""
    if not callable(getattr(cls, "predict", None)):
        raise ModelLoadError(
            f"The predictor class {ref!r} has no predict() method; subclass "
            "shipyard.serving.Predictor and implement predict(inputs)."
        )
    try:
        return cls()
    except Exception as err:
        raise ModelLoadError(
            f"Creating the predictor {ref!r} failed ({type(err).__name__}: {err}); a "
            "predictor is created with no arguments and loads its files in load(model_dir)."
        ) from err

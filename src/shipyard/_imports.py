"""Import paths (``"package.module:attribute"``): the one resolver every layer uses.

Flavors, stored Service classes and custom predictors are all named this way; each
caller chooses the error class its users see (a stack problem, a model that cannot load).
Optional dependencies are imported here too (``require``): a missing one is one error
naming the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from shipyard.errors import MissingDependencyError, ShipyardError, StackError

__all__ = ["attribute_of", "import_object", "require", "split_import_path"]


def require(module: str, *, package: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or raise ``MissingDependencyError`` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(package, extra, purpose) from err


def split_import_path(
    ref: str, *, error: type[ShipyardError] = StackError, dotted: bool = False
) -> tuple[str, str]:
    """``"module:attr.sub"`` -> ``("module", "attr.sub")``.

    ``dotted`` also accepts ``"module.attr"`` (the last dot splits), as predictor
    references always have.
    """
    if ":" in ref or not dotted:
        module, _, qualname = ref.partition(":")
    else:
        module, _, qualname = ref.rpartition(".")
    if not module or not qualname:
        raise error(f"'{ref}' is not an import path; write it as 'package.module:ClassName'.")
    return module, qualname


def attribute_of(
    target: Any, qualname: str, ref: str, *, error: type[ShipyardError] = StackError
) -> Any:
    """``target.a.b`` for ``qualname`` ``"a.b"``; ``error`` naming ``ref`` if one is missing."""
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as err:
            module = getattr(target, "__name__", ref)
            raise error(
                f"The module '{module}' has no attribute '{qualname}' (from '{ref}')."
            ) from err
    return target


def import_object(
    ref: str, *, error: type[ShipyardError] = StackError, dotted: bool = False
) -> Any:
    """Import what ``"package.module:attribute"`` names (the attribute may be dotted)."""
    module_name, qualname = split_import_path(ref, error=error, dotted=dotted)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise error(f"Cannot import the module '{module_name}' of '{ref}': {err}") from err
    return attribute_of(module, qualname, ref, error=error)

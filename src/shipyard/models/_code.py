"""Carrying the user's code: the predictor's module (and helper modules) into ``code/``."""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipyard._imports import import_object
from shipyard.errors import ConfigError

__all__ = ["CODE_DIR", "carry_code_paths", "carry_predictor", "resolve_predictor"]

CODE_DIR = "code"


def resolve_predictor(predictor: type[Any] | str) -> type[Any]:
    if isinstance(predictor, type):
        return predictor
    obj = import_object(predictor, error=ConfigError, dotted=True)
    if not isinstance(obj, type):
        raise ConfigError(f"The predictor {predictor!r} is not a class.")
    return obj


def _is_installed_module(path: Path) -> bool:
    parts = path.resolve().parts
    return "site-packages" in parts or "dist-packages" in parts


def carry_predictor(cls: type[Any], staging: Path) -> tuple[str, str | None]:
    """Copy the module defining ``cls`` into the model dir; returns (ref, source file)."""
    if "<locals>" in cls.__qualname__:
        raise ConfigError(
            f"The predictor {cls.__qualname__} is defined inside a function; define it at "
            "module level so it can be imported when the model loads."
        )
    if not callable(getattr(cls, "predict", None)):
        raise ConfigError(f"The predictor {cls.__qualname__} has no predict() method.")
    module_name = cls.__module__
    if module_name.split(".")[0] == "shipyard":
        return f"{module_name}:{cls.__qualname__}", None
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        source = None
    if source is None or not Path(source).is_file():
        raise ConfigError(
            f"Cannot find the source file of predictor {cls.__qualname__} (module "
            f"{module_name!r}); define it in a .py module, not in a notebook cell or REPL."
        )
    src = Path(source)
    if _is_installed_module(src):
        # An installed package is imported by name; its requirement must be listed.
        return f"{module_name}:{cls.__qualname__}", None
    if module_name == "__main__":
        module_name = src.stem
    leaf = module_name.rsplit(".", 1)[-1]
    code_dir = staging / CODE_DIR
    code_dir.mkdir(exist_ok=True)
    shutil.copy2(src, code_dir / f"{leaf}.py")
    return f"{module_name}:{cls.__qualname__}", f"{CODE_DIR}/{leaf}.py"


def carry_code_paths(paths: Sequence[str | os.PathLike[str]], staging: Path) -> list[str]:
    """Copy helper modules/packages into ``code/``; returns their paths in the model dir.

    ``code/`` goes on ``sys.path`` when the model loads, so the predictor imports them by
    their plain names (``import features``), as it did on the author's machine.
    """
    code_dir = staging / CODE_DIR
    code_dir.mkdir(exist_ok=True)
    carried: list[str] = []
    for item in paths:
        src = Path(item).expanduser()
        dest = code_dir / src.name
        if dest.exists():
            raise ConfigError(
                f"Two code paths are named {src.name!r} (the second is {src}); each module "
                "or package in code_paths needs its own name."
            )
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.is_file():
            shutil.copy2(src, dest)
        else:
            raise ConfigError(f"code_paths entry {src} does not exist.")
        carried.append(f"{CODE_DIR}/{src.name}")
    return carried

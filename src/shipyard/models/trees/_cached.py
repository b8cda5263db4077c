"""A tree ensemble served from its cache alone: no framework import, no unpickling.

Beside the arrays (``_evaluator``), a full load of a scikit-learn ensemble whose last
step is data (``_finish.FinishSpec``) writes ``finish-<model hash>-<engine
version>-<method>.json``: that step, the recipe's input rules and the estimator's
feature count and names. ``load_cached`` rebuilds the evaluator from these files when
all of them are there for this exact model file (its hash), this engine version and
this CPU (the kernel's file name), and says why not otherwise: the caller then loads the
model the ordinary way, which builds whatever was missing.

Nothing here runs code from the cache but the kernel, which the full load runs too; the
JSON and the arrays are read as data (``allow_pickle=False``).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from shipyard.models.trees._ensemble import Ensemble, Unsupported
from shipyard.models.trees._finish import (
    FinishSpec,
    classes_from_json,
    classes_to_json,
    finish,
)
from shipyard.models.trees._model import Recipe, TreeModel

__all__ = ["converted_before", "finish_path", "load_cached", "save_finish"]

#: Version of the JSON file's layout (a change makes old files miss).
FORMAT = 1


def finish_path(cache: Path, model_hash: str, engine: str, method: str) -> Path:
    return cache / f"finish-{model_hash}-{engine}-{method}.json"


def _header(recipe: Recipe, model_hash: str, engine: str) -> dict[str, Any] | None:
    """What the file holds, or None when a load from the cache alone could not answer
    exactly (the loss object is needed, or the labels do not survive JSON)."""
    spec = recipe.spec
    if spec is None or spec.needs_loss or recipe.n_features is None:
        return None
    classes = None
    if spec.classes is not None:
        classes = classes_to_json(spec.classes)
        if classes is None:
            return None
    return {
        "format": FORMAT,
        "model_hash": model_hash,
        "engine": engine,
        "what": recipe.what,
        "finite_only": recipe.finite_only,
        "reject_inf": recipe.reject_inf,
        "zero_below": recipe.zero_below,
        "n_features": recipe.n_features,
        "feature_names": recipe.feature_names,
        "finish": {
            "kind": spec.kind,
            "method": spec.method,
            "classifier": spec.classifier,
            "divisor": spec.divisor,
            "hist": spec.hist,
            "link": spec.link,
            "classes": classes,
        },
    }


def save_finish(cache: Path, model_hash: str, engine: str, recipe: Recipe) -> Path | None:
    """Write the finish file if the recipe allows a load from the cache alone and it is
    not there yet; returns its path (None when not written). Raises ``OSError``."""
    header = _header(recipe, model_hash, engine)
    if header is None or recipe.spec is None or not recipe.spec.method.isidentifier():
        return None
    path = finish_path(cache, model_hash, engine, recipe.spec.method)
    if path.is_file():
        return path
    fd, tmp = tempfile.mkstemp(prefix=".finish-", suffix=".json", dir=cache)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(header, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _never() -> Ensemble:
    raise Unsupported("internal error: a model loaded from its cache has no estimator")


def _recipe(header: dict[str, Any], method: str) -> Recipe:
    """The recipe the file describes; KeyError, TypeError or ValueError when it is not
    one this version wrote."""
    f = header["finish"]
    if (
        header["format"] != FORMAT
        or f["method"] != method
        or f["kind"] not in ("forest", "boosting")
    ):
        raise ValueError("another format or method")
    spec = FinishSpec(
        kind=f["kind"],
        method=str(f["method"]),
        classifier=bool(f["classifier"]),
        classes=None if f["classes"] is None else classes_from_json(f["classes"]),
        divisor=int(f["divisor"]),
        hist=bool(f["hist"]),
        link=None if f["link"] is None else str(f["link"]),
    )
    if spec.needs_loss or (spec.classifier and spec.classes is None) or spec.divisor < 1:
        raise ValueError("a finish this file cannot hold")
    names = header["feature_names"]
    zero_below = header["zero_below"]
    return Recipe(
        functools.partial(finish, spec),
        _never,
        finite_only=bool(header["finite_only"]),
        reject_inf=bool(header["reject_inf"]),
        what=str(header["what"]),
        zero_below=None if zero_below is None else float(zero_below),
        spec=spec,
        n_features=int(header["n_features"]),
        feature_names=None if names is None else [str(n) for n in names],
    )


def converted_before(model_file: Path) -> bool:
    """Whether the cache holds this model file's arrays from any engine version: it is a
    tree ensemble the evaluator takes (cheap: no framework, no unpickling)."""
    from shipyard.models.trees._evaluator import cache_dirs, ensemble_path, file_hash

    model_hash = file_hash(model_file)
    pattern = ensemble_path(Path(), model_hash, engine="*").name
    return any(any(d.glob(pattern)) for d in cache_dirs(model_file, model_hash) if d.is_dir())


def load_cached(model_file: Path, method: str) -> tuple[Any, str]:
    """(evaluator, "") from the cache alone, or (None, why not)."""
    from shipyard.models.trees._evaluator import (
        ENV_SWITCH,
        TreeEvaluator,
        cache_dirs,
        ensemble_path,
        file_hash,
        load_ensemble,
        turned_off,
    )
    from shipyard.models.trees._native import Kernel, NoCompiler, engine_version, kernel_path

    if turned_off():
        return None, f"turned off by {ENV_SWITCH}"
    model_hash = file_hash(model_file)
    engine = engine_version()
    # Where a full load would have written it, without creating anything.
    spec_file = next(
        (
            found
            for d in cache_dirs(model_file, model_hash)
            if (found := finish_path(d, model_hash, engine, method)).is_file()
        ),
        None,
    )
    if spec_file is None:
        return None, f"no {finish_path(Path(), model_hash, engine, method).name}"
    cache = spec_file.parent
    kernel_file = kernel_path(cache)
    arrays = ensemble_path(cache, model_hash, engine)
    for needed in (kernel_file, arrays):
        if not needed.is_file():
            return None, f"no {needed.name} in {cache}"
    try:
        header = json.loads(spec_file.read_text(encoding="utf-8"))
        if header["model_hash"] != model_hash or header["engine"] != engine:
            return None, f"{spec_file} is for another model or engine"
        recipe = _recipe(header, method)
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"unreadable {spec_file} ({type(err).__name__}: {err})"
    ens = load_ensemble(arrays)
    if ens is None or ens.n_features != recipe.n_features:
        return None, f"unreadable or mismatched {arrays}"
    try:
        kernel = Kernel(kernel_file)
    except NoCompiler as err:
        return None, str(err)
    return TreeEvaluator(TreeModel(ens, recipe), kernel, cache), ""

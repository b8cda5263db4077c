"""Compiled tree ensembles: the framework's exact answers without the framework's predict.

``attach(model, method, model_file)`` is called by the scikit-learn, XGBoost and
LightGBM runtimes when they load a model. For a supported ensemble it returns an
evaluator whose ``predict(x)`` gives what ``getattr(model, method)(x)`` gives (labels
identical, numbers equal or within 1e-6), computed by one C kernel (``_kernel.c``)
compiled with the machine's compiler; otherwise None and a note saying why, logged once.
``load_cached(model_file, method)`` gives the same evaluator from the cache alone (no
framework, no unpickling) once a full load has written it, or None and why not.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shipyard.models.trees._cached import load_cached
from shipyard.models.trees._ensemble import Unsupported
from shipyard.models.trees._evaluator import ENV_SWITCH, TreeEvaluator, build_evaluator
from shipyard.models.trees._native import NoCompiler, engine_version

__all__ = ["ENV_SWITCH", "TreeEvaluator", "attach", "engine_version", "load_cached"]

log = logging.getLogger("shipyard.models.trees")


def _recipe(model: Any, method: str) -> Any:
    module = type(model).__module__.split(".")[0]
    if module == "sklearn":
        from shipyard.models.trees._sklearn import sklearn_recipe

        return sklearn_recipe(model, method)
    if module == "xgboost":
        from shipyard.models.trees._xgboost import xgboost_recipe

        return xgboost_recipe(model, method)
    if module == "lightgbm":
        from shipyard.models.trees._lightgbm import lightgbm_recipe

        return lightgbm_recipe(model, method)
    return None


def is_tree_ensemble(model: Any) -> bool:
    """Whether ``model`` is of a kind the evaluator knows (whatever its options)."""
    name = type(model).__name__
    return name in (
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
        "Booster",
    ) and type(model).__module__.split(".")[0] in ("sklearn", "xgboost", "lightgbm")


def attach(model: Any, method: str, model_file: Path) -> tuple[TreeEvaluator | None, str | None]:
    """(evaluator, note): the evaluator or None, and what predicts this model, for humans.

    The note is None for models that are not tree ensembles (nothing to say).
    """
    if not is_tree_ensemble(model):
        return None, None
    kind = type(model).__name__
    try:
        recipe = _recipe(model, method)
        if recipe is None:
            return None, None
        evaluator = build_evaluator(recipe, model_file)
    except NoCompiler as err:
        note = f"framework predict: the tree evaluator is not available here ({err})"
        log.warning("%s in %s: %s", kind, model_file, note)
        return None, note
    except Unsupported as err:
        note = f"framework predict: the tree evaluator cannot guarantee exact answers ({err})"
        log.warning("%s in %s: %s", kind, model_file, note)
        return None, note
    return evaluator, evaluator.note

"""Find, build or load a model's compiled evaluator, with its cache next to the model.

Cache layout, in ``<model dir>/.shipyard/trees/`` (or, when the model directory is not
writable, ``$XDG_CACHE_HOME/shipyard/trees/<model hash>/``):

- ``kernel-<engine version>-<cpu>.so``: the compiled kernel (same for every model);
- ``ensemble-<model hash>-<engine version>.npz``: the model's converted arrays;
- ``finish-<model hash>-<engine version>-<method>.json``: what a load from the cache
  alone needs besides (``_cached``; scikit-learn ensembles whose last step is data).

A changed model file (new hash) or kernel source (new engine version) or another CPU
misses the cache and rebuilds; nothing is ever built on the request path, only in
``load`` and ``save_model``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from shipyard._switches import switched_off
from shipyard.models.trees._cached import save_finish
from shipyard.models.trees._ensemble import Ensemble, Unsupported
from shipyard.models.trees._model import Recipe, TreeModel
from shipyard.models.trees._native import Kernel, engine_version, library
from shipyard.models.trees._probe import compare, probe_rows

__all__ = [
    "TreeEvaluator",
    "build_evaluator",
    "cache_dir_for",
    "cache_dirs",
    "ensemble_path",
    "file_hash",
    "load_ensemble",
    "turned_off",
]

log = logging.getLogger("shipyard.models.trees")

#: ``SHIPYARD_TREES=off`` turns the evaluator off (the framework predicts).
ENV_SWITCH = "SHIPYARD_TREES"


class TreeEvaluator:
    """``predict(x)``: the framework's answer for a 2-D numeric array, or None to defer."""

    def __init__(self, model: TreeModel, kernel: Kernel, cache: Path) -> None:
        self.ensemble = model.ensemble
        self.recipe = model.recipe
        self.kernel = kernel
        self.cache = cache
        self.engine = engine_version()

    @property
    def note(self) -> str:
        ens = self.ensemble
        return (
            f"compiled trees ({self.engine}{', AVX-512' if self.kernel.vector else ''}, "
            f"{len(ens.roots)} trees, "
            f"{len(ens.nodes)} nodes; cache {self.cache})"
        )

    def predict(self, x: Any) -> np.ndarray[Any, Any] | None:
        ens = self.ensemble
        if (
            not isinstance(x, np.ndarray)
            or x.ndim != 2
            or x.shape[1] != ens.n_features
            or x.shape[0] == 0
            or x.dtype.kind not in "biuf"
        ):
            return None
        if ens.input32:
            with np.errstate(over="ignore"):  # too large for float32 -> inf, refused below
                xc = np.ascontiguousarray(x, dtype=np.float32)
        else:
            xc = np.ascontiguousarray(x, dtype=np.float64)
        if self.recipe.finite_only:
            if not np.isfinite(xc).all():
                return None  # the framework decides: its missing-value rule or its error
        elif self.recipe.reject_inf and np.isinf(xc).any():
            return None
        if self.recipe.zero_below is not None:
            tiny = np.abs(xc) <= self.recipe.zero_below
            if tiny.any():
                xc = np.where(tiny, 0.0, xc)
        return self.recipe.finish(self.kernel.run(ens, xc, nan=not self.recipe.finite_only))


def turned_off() -> bool:
    """Whether ``SHIPYARD_TREES`` turns the evaluator off (the framework predicts)."""
    return switched_off(ENV_SWITCH)


def ensemble_path(cache: Path, model_hash: str, engine: str | None = None) -> Path:
    """Where a model's converted arrays are (or go) in ``cache``; ``engine`` defaults to
    this engine version (``"*"``: a glob pattern for any)."""
    return cache / f"ensemble-{model_hash}-{engine or engine_version()}.npz"


def file_hash(path: Path) -> str:
    """sha256 of a model file (or of every file under a model folder), 16 hex digits."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def cache_dir_for(model_file: Path, model_hash: str) -> Path:
    """Next to the model if that directory is writable, else in the user's cache."""
    beside, user = cache_dirs(model_file, model_hash)
    return beside if _writable(beside) else user


def cache_dirs(model_file: Path, model_hash: str) -> tuple[Path, Path]:
    """Where the cache may be (next to the model, in the user's cache), creating nothing."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return model_file.parent / ".shipyard" / "trees", root / "shipyard" / "trees" / model_hash


def load_ensemble(path: Path) -> Ensemble | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return Ensemble.from_arrays(data)
    except (OSError, ValueError, KeyError) as err:
        log.warning("Ignoring the unreadable tree cache %s (%s); rebuilding it.", path, err)
        return None


def _save_ensemble(path: Path, ens: Ensemble) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".ensemble-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **ens.arrays())  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_evaluator(recipe: Recipe, model_file: Path) -> TreeEvaluator:
    """Load (or build and cache) the compiled kernel and the model's arrays.

    Raises ``Unsupported`` (its subclass ``NoCompiler`` when no compiler works).
    """
    if turned_off():
        raise Unsupported(f"turned off by {ENV_SWITCH}={os.environ[ENV_SWITCH]}")
    model_hash = file_hash(model_file)
    cache = cache_dir_for(model_file, model_hash)
    cache.mkdir(parents=True, exist_ok=True)
    kernel = Kernel(library(cache))
    path = ensemble_path(cache, model_hash)
    ens = load_ensemble(path) if path.is_file() else None
    if ens is None:
        ens = recipe.convert()
        if recipe.reference is not None:
            fresh = TreeEvaluator(TreeModel(ens, recipe), kernel, cache)
            x = probe_rows(ens, nan=not recipe.finite_only)
            if recipe.finite_only or recipe.reject_inf:
                x = x[np.isfinite(x).all(axis=1)] if recipe.finite_only else x
            compare(fresh.predict, recipe.reference, x, recipe.tolerance)
        try:
            _save_ensemble(path, ens)
        except OSError as err:  # a read-only cache still gives a working evaluator
            log.warning("Could not write the tree cache %s: %s", path, err)
    try:
        # What a load from the cache alone needs besides the arrays (``_cached``); also
        # for arrays cached before this file existed.
        save_finish(cache, model_hash, engine_version(), recipe)
    except OSError as err:
        log.warning("Could not write the tree cache in %s: %s", cache, err)
    return TreeEvaluator(TreeModel(ens, recipe), kernel, cache)

"""The one form every supported model is converted to: flat node arrays the kernel walks.

A converter hands ``build`` one ``Tree`` per tree (children, feature, threshold, NaN
direction, leaf values), already in the kernel's rule "go left iff x <= threshold"; the
nodes are renumbered breadth-first so that each node's children are adjacent, and
leaves point to themselves (see ``_kernel.c``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "NODE32",
    "NODE64",
    "PNODE32",
    "PNODE64",
    "Ensemble",
    "Tree",
    "Unsupported",
    "build",
    "floor32",
]

#: Must match ``node32_t`` and ``node64_t`` in ``_kernel.c``.
NODE32 = np.dtype([("thr", "<f4"), ("feat", "<i4"), ("left", "<i4")])
NODE64 = np.dtype([("thr", "<f8"), ("feat", "<i4"), ("left", "<i4")])
#: ``pnode32_t`` and ``pnode64_t``: perfect trees need no child index.
PNODE32 = np.dtype([("thr", "<f4"), ("feat", "<i4")])
PNODE64 = np.dtype([("thr", "<f8"), ("feat", "<i4"), ("pad", "<i4")])
#: Bit 31 of a node's feature index: a NaN goes left.
NAN_LEFT = np.int32(-(2**31))
#: Trees up to this depth are stored perfect (at most 2^depth leaf slots each) ...
PERFECT_DEPTH = 12
#: ... unless padding them would take more than this many times the nodes they have.
PERFECT_GROWTH = 8


def floor32(t: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The largest float32 not above each float64 ``t``: for a float32 x, x <= t iff
    x <= floor32(t), so a float32 comparison decides exactly as the float64 one."""
    # Below -max float32 the answer is -inf: an overflow, but the right one.
    with np.errstate(over="ignore"):
        t32 = t.astype(np.float32)
        above = t32.astype(np.float64) > t
        t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


class Unsupported(Exception):
    """This model (or this option of it) cannot be evaluated exactly; the framework predicts."""


@dataclass
class Tree:
    """One tree in its framework's node numbering; ``left[i] < 0`` marks a leaf."""

    left: np.ndarray[Any, Any]
    right: np.ndarray[Any, Any]
    feature: np.ndarray[Any, Any]
    threshold: np.ndarray[Any, Any]
    """float64, already in the rule "go left iff x <= threshold"."""
    nan_left: np.ndarray[Any, Any]
    """bool per node: where a NaN feature value goes."""
    value: np.ndarray[Any, Any]
    """(nodes, width) float64; only leaves' rows are used."""
    group: int = 0
    """First output column this tree adds to."""


@dataclass
class Ensemble:
    """What the kernel needs, as arrays that can be saved and memory-mapped."""

    nodes: np.ndarray[Any, Any]
    roots: np.ndarray[Any, Any]
    """Index of each tree's first node in ``nodes``."""
    depths: np.ndarray[Any, Any]
    groups: np.ndarray[Any, Any]
    leafbase: np.ndarray[Any, Any]
    """perfect layout: index of each tree's first leaf slot in ``values``."""
    values: np.ndarray[Any, Any]
    init: np.ndarray[Any, Any]
    """Starting value of each output column (float64)."""
    n_features: int
    input32: bool
    """Round features to float32 before comparing (scikit-learn trees, XGBoost)."""
    acc32: bool
    """Sum leaf values in float32 (XGBoost)."""
    perfect: bool
    """Heap-ordered perfect trees (see ``_kernel.c``), else linked nodes."""

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.init.shape[0])

    def arrays(self) -> dict[str, np.ndarray[Any, Any]]:
        meta = np.array(
            [self.n_features, int(self.input32), int(self.acc32), int(self.perfect)],
            dtype=np.int64,
        )
        return {
            "nodes": self.nodes,
            "roots": self.roots,
            "depths": self.depths,
            "groups": self.groups,
            "leafbase": self.leafbase,
            "values": self.values,
            "init": self.init,
            "meta": meta,
        }

    @classmethod
    def from_arrays(cls, a: Any) -> Ensemble:
        meta = a["meta"]
        kinds = {(1, 1): PNODE32, (1, 0): PNODE64, (0, 1): NODE32, (0, 0): NODE64}
        dtype = kinds[(int(meta[3]), int(meta[1]))]
        return cls(
            nodes=np.ascontiguousarray(a["nodes"], dtype=dtype),
            leafbase=np.ascontiguousarray(a["leafbase"], dtype=np.int32),
            roots=np.ascontiguousarray(a["roots"], dtype=np.int32),
            depths=np.ascontiguousarray(a["depths"], dtype=np.int32),
            groups=np.ascontiguousarray(a["groups"], dtype=np.int32),
            values=np.ascontiguousarray(a["values"], dtype=np.float64),
            init=np.ascontiguousarray(a["init"], dtype=np.float64),
            n_features=int(meta[0]),
            input32=bool(meta[1]),
            acc32=bool(meta[2]),
            perfect=bool(meta[3]),
        )


def _layout(tree: Tree) -> tuple[list[int], int]:
    """Breadth-first order with adjacent children: (old ids in new order, depth)."""
    left = tree.left.tolist()
    right = tree.right.tolist()
    order = [0]
    depth_of = {0: 0}
    depth = 0
    queue: deque[int] = deque([0])
    while queue:
        old = queue.popleft()
        if left[old] < 0:
            continue
        d = depth_of[old] + 1
        depth = max(depth, d)
        for child in (left[old], right[old]):
            order.append(child)
            depth_of[child] = d
            queue.append(child)
    return order, depth


def _perfect(tree: Tree, depth: int, input32: bool) -> tuple[Any, Any]:
    """(internal nodes in heap order, leaf slot values) of one tree padded to ``depth``."""
    dtype = PNODE32 if input32 else PNODE64
    internal = np.zeros((1 << depth) - 1, dtype=dtype)
    internal["thr"] = np.inf  # padding: always left (NaN too: the NaN-left bit set)
    internal["feat"] = NAN_LEFT
    thr = np.zeros(len(internal), dtype=np.float64)
    thr[:] = np.inf
    width = tree.value.shape[1]
    slots = np.zeros(((1 << depth), width), dtype=np.float64)
    left, right = tree.left.tolist(), tree.right.tolist()
    stack = [(0, 0, 0)]  # (old id, heap position, depth)
    while stack:
        old, pos, d = stack.pop()
        if left[old] < 0:
            leaf = pos
            for _ in range(depth - d):
                leaf = 2 * leaf + 1  # the leftmost slot: where the always-left chain ends
            slots[leaf - len(internal)] = tree.value[old]
            continue
        f = int(tree.feature[old])
        internal["feat"][pos] = (f | NAN_LEFT) if tree.nan_left[old] else f
        thr[pos] = tree.threshold[old]
        stack.append((left[old], 2 * pos + 1, d + 1))
        stack.append((right[old], 2 * pos + 2, d + 1))
    internal["thr"] = floor32(thr) if input32 else thr
    return internal, slots


def _check_features(tree: Tree, n_features: int) -> None:
    inner = tree.left >= 0
    feat = np.asarray(tree.feature, dtype=np.int64)[inner]
    if ((feat < 0) | (feat >= n_features)).any():
        raise Unsupported("a split on a feature index outside the input")


def build(
    trees: list[Tree], n_features: int, init: np.ndarray[Any, Any], *, input32: bool, acc32: bool
) -> Ensemble:
    """Lay the trees out for the kernel: perfect when they are shallow enough, else linked."""
    if not trees:
        raise Unsupported("the model has no trees")
    width = int(trees[0].value.shape[1])
    layouts = []
    for tree in trees:
        if tree.value.shape[1] != width:
            raise Unsupported("trees of different output widths")
        _check_features(tree, n_features)
        layouts.append(_layout(tree))
    depths = np.array([d for _, d in layouts], dtype=np.int32)
    sizes = sum(len(order) for order, _ in layouts)
    padded = int(np.sum(np.left_shift(1, depths.astype(np.int64)))) * 2
    perfect = int(depths.max()) <= PERFECT_DEPTH and padded <= PERFECT_GROWTH * sizes
    init = np.ascontiguousarray(init, dtype=np.float64).reshape(-1)
    groups = np.array([t.group for t in trees], dtype=np.int32)
    if int(groups.max()) + width > init.shape[0]:
        raise Unsupported("a tree adds to an output column that does not exist")
    if perfect:
        parts = [_perfect(tree, int(d), input32) for tree, d in zip(trees, depths, strict=True)]
        counts = np.array([len(p[0]) for p in parts], dtype=np.int64)
        leaves = np.array([len(p[1]) for p in parts], dtype=np.int64)
        nodes = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts])
        roots = np.concatenate([[0], np.cumsum(counts)[:-1]])
        leafbase = np.concatenate([[0], np.cumsum(leaves)[:-1]])
    else:
        linked = [
            _linked(tree, order, input32) for tree, (order, _) in zip(trees, layouts, strict=True)
        ]
        counts = np.array([len(p[0]) for p in linked], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(counts)[:-1]])
        for (nodes_t, _), base in zip(linked, roots, strict=True):
            nodes_t["left"] += base
        nodes = np.concatenate([p[0] for p in linked])
        values = np.concatenate([p[1] for p in linked])
        leafbase = np.zeros(len(trees), dtype=np.int64)
    if max(len(nodes), len(values)) >= 2**31 - 1:
        raise Unsupported("more than 2^31 nodes")
    return Ensemble(
        nodes=np.ascontiguousarray(nodes),
        roots=roots.astype(np.int32),
        depths=depths,
        groups=groups,
        leafbase=leafbase.astype(np.int32),
        values=np.ascontiguousarray(values, dtype=np.float64),
        init=init,
        n_features=n_features,
        input32=input32,
        acc32=acc32,
        perfect=perfect,
    )


def _linked(tree: Tree, order: list[int], input32: bool) -> tuple[Any, Any]:
    """(nodes, per-node values) in breadth-first order, child indices from 0."""
    old = np.asarray(order, dtype=np.int64)
    new_of_old = np.full(len(tree.left), -1, dtype=np.int64)
    new_of_old[old] = np.arange(len(old))
    is_leaf = tree.left[old] < 0
    nodes = np.empty(len(old), dtype=NODE32 if input32 else NODE64)
    thr = np.where(is_leaf, np.inf, tree.threshold[old]).astype(np.float64)
    nodes["thr"] = floor32(thr) if input32 else thr
    nan_left = np.where(is_leaf, True, tree.nan_left[old])
    feat = np.where(is_leaf, 0, tree.feature[old]).astype(np.int32)
    nodes["feat"] = np.where(nan_left, feat | NAN_LEFT, feat)
    left_new = np.where(is_leaf, 0, new_of_old[np.maximum(tree.left[old], 0)])
    nodes["left"] = np.where(is_leaf, np.arange(len(old)), left_new)
    # Adjacent children is what the kernel relies on: check it, never assume it.
    inner = ~is_leaf
    if not np.array_equal(
        new_of_old[tree.right[old][inner]], new_of_old[tree.left[old][inner]] + 1
    ):
        raise Unsupported("internal error: children not adjacent")  # pragma: no cover
    values = np.where(is_leaf[:, None], tree.value[old], 0.0).astype(np.float64)
    return nodes, values

"""The replicas' log lines, read where they are written: on each node of the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["replica_logs"]


def _read_node_logs(app_name: str, tail: int | None) -> list[str]:
    """Runs on one node: the lines of that node's replica log files of ``app_name``."""
    import collections
    import glob
    import os

    from ray.serve._private.logging_utils import get_serve_logs_dir

    lines: list[str] = []
    for path in sorted(glob.glob(os.path.join(get_serve_logs_dir(), f"replica_{app_name}_*"))):
        with open(path, errors="replace") as handle:
            kept = collections.deque(handle, maxlen=tail) if tail is not None else handle
            name = os.path.basename(path)
            lines.extend(f"[{name}] {line.rstrip()}" for line in kept)
    return lines


def replica_logs(app_name: str, tail: int | None) -> Iterator[str]:
    """Each alive node's replica logs of ``app_name`` (a task pinned to each node)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    reader: Any = ray.remote(num_cpus=0)(_read_node_logs)
    refs = [
        reader.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote(app_name, tail)
        for node in ray.nodes()
        if node.get("Alive")
    ]
    for lines in ray.get(refs, timeout=60):
        yield from lines

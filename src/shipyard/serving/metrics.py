"""Prometheus metrics without prometheus_client: counters and histograms per model.

Each worker process keeps its numbers in memory and writes them, at most a few times a
second, to ``<metrics_dir>/worker-<pid>.json``; ``/metrics`` in any worker sums every
file (its own freshly written first), so the numbers cover all workers, including ones
that died and were replaced (counters never go backwards).

The periodic write runs in a thread (``flush_in_thread``): replacing a file by rename can
wait for the disk for tens of milliseconds (ext4 writes the new file's blocks out first),
and the event loop must not stop serving meanwhile. Each write carries a sequence number,
so a slower, older write never replaces a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from shipyard.serving._heap import gc_counters

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "Metrics", "render"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

_HELP = {
    "shipyard_requests_total": ("counter", "Requests answered, by model, protocol and status."),
    "shipyard_request_errors_total": ("counter", "Requests answered with a 4xx or 5xx status."),
    "shipyard_requests_unserved_total": (
        "counter",
        "Requests not served, by reason: shed (queue full, answered 503), timeout "
        "(answered 504) or cancelled (the client left first; it got no answer and is not "
        "in shipyard_requests_total).",
    ),
    "shipyard_request_duration_seconds": ("histogram", "Time from request read to answer."),
    "shipyard_batch_size": ("histogram", "Rows per predict call."),
    "shipyard_batch_requests": ("histogram", "Requests merged into one predict call."),
    "python_gc_collections_total": ("counter", "Passes of the cyclic garbage collector."),
    "python_gc_objects_collected_total": (
        "counter",
        "Objects the cyclic garbage collector found unreachable and freed (reference "
        "cycles; the request path leaves none).",
    ),
    "python_gc_objects_uncollectable_total": (
        "counter",
        "Objects the cyclic garbage collector found unreachable but could not free.",
    ),
}
_BUCKETS = {
    "shipyard_request_duration_seconds": LATENCY_BUCKETS,
    "shipyard_batch_size": BATCH_BUCKETS,
    "shipyard_batch_requests": BATCH_BUCKETS,
}

# A series is (metric name, sorted label pairs); its value is a float (counter) or a list
# [count, sum, bucket counts...] (histogram).
_Key = tuple[str, tuple[tuple[str, str], ...]]


class Metrics:
    """This worker's numbers, optionally mirrored into a shared directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self._counters: dict[_Key, float] = {}
        self._histograms: dict[_Key, list[float]] = {}
        self._dir = directory
        self._file = directory / f"worker-{os.getpid()}.json" if directory else None
        self.dirty = False
        self._lock = threading.Lock()
        self._taken = 0  # snapshots taken
        self._written = 0  # the newest snapshot in the file

    def inc(self, name: str, labels: tuple[tuple[str, str], ...], value: float = 1.0) -> None:
        key = (name, labels)
        self._counters[key] = self._counters.get(key, 0.0) + value
        self.dirty = True

    def observe(self, name: str, labels: tuple[tuple[str, str], ...], value: float) -> None:
        key = (name, labels)
        buckets = _BUCKETS[name]
        series = self._histograms.get(key)
        if series is None:
            series = self._histograms[key] = [0.0] * (2 + len(buckets))
        series[0] += 1
        series[1] += value
        for i, bound in enumerate(buckets):
            if value <= bound:
                series[2 + i] += 1
                break
        self.dirty = True

    def observe_request(self, model: str, protocol: str, status: int, seconds: float) -> None:
        labels = (("model", model), ("protocol", protocol), ("status", str(status)))
        self.inc("shipyard_requests_total", labels)
        if status >= 400:
            self.inc("shipyard_request_errors_total", labels)
        self.observe(
            "shipyard_request_duration_seconds", (("model", model), ("protocol", protocol)), seconds
        )

    def observe_unserved(self, model: str, protocol: str, reason: str) -> None:
        """A request shed, timed out or cancelled (see ``shipyard_requests_unserved_total``)."""
        labels = (("model", model), ("protocol", protocol), ("reason", reason))
        self.inc("shipyard_requests_unserved_total", labels)

    def observe_batch(self, model: str, rows: int, requests: int) -> None:
        labels = (("model", model),)
        self.observe("shipyard_batch_size", labels, rows)
        self.observe("shipyard_batch_requests", labels, requests)

    def snapshot(self) -> dict[str, Any]:
        # The collector's totals are read now: they change without marking the numbers
        # dirty, so another worker's file may hold them as of its last request.
        counters = [*self._counters.items(), *(((n, lb), v) for n, lb, v in gc_counters())]
        return {
            "counters": [[n, list(map(list, lb)), v] for (n, lb), v in counters],
            "histograms": [[n, list(map(list, lb)), v] for (n, lb), v in self._histograms.items()],
        }

    def flush(self) -> None:
        """Write this worker's numbers to its file (atomically: write, then rename)."""
        if self._file is not None:
            self._write(self._file, *self._take())

    async def flush_in_thread(self) -> None:
        """``flush``, with the file written in a thread (the snapshot is taken here, on
        the event loop that changes the numbers)."""
        if self._file is not None:
            await asyncio.to_thread(self._write, self._file, *self._take())

    def _take(self) -> tuple[int, bytes]:
        self._taken += 1
        self.dirty = False
        return self._taken, orjson.dumps(self.snapshot())

    def _write(self, file: Path, number: int, data: bytes) -> None:
        with self._lock:
            if number <= self._written:
                return  # a newer snapshot is in the file already
            tmp = file.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, file)
            self._written = number

    def collect(self) -> str:
        """Prometheus text of every worker's numbers (this one's included)."""
        if self._dir is None:
            return render([self.snapshot()])
        self.flush()
        snapshots: list[dict[str, Any]] = []
        for path in sorted(self._dir.glob("worker-*.json")):
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                snapshots.append(orjson.loads(path.read_bytes()))
        return render(snapshots)


def _labels(pairs: Iterable[tuple[str, str]], extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in pairs]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(snapshots: list[dict[str, Any]]) -> str:
    """Sum snapshots from several workers and write them in the Prometheus text format."""
    counters: dict[_Key, float] = {}
    histograms: dict[_Key, list[float]] = {}
    for snap in snapshots:
        for name, labels, value in snap.get("counters", []):
            key = (name, tuple((str(a), str(b)) for a, b in labels))
            counters[key] = counters.get(key, 0.0) + float(value)
        for name, labels, values in snap.get("histograms", []):
            key = (name, tuple((str(a), str(b)) for a, b in labels))
            series = histograms.get(key)
            if series is None or len(series) != len(values):
                histograms[key] = [float(v) for v in values]
            else:
                for i, v in enumerate(values):
                    series[i] += float(v)
    lines: list[str] = []
    for metric, (kind, text) in _HELP.items():
        lines.append(f"# HELP {metric} {text}")
        lines.append(f"# TYPE {metric} {kind}")
        if kind == "counter":
            for (name, labels), value in sorted(counters.items()):
                if name == metric:
                    lines.append(f"{metric}{_labels(labels)} {value:g}")
            continue
        buckets = _BUCKETS[metric]
        for (name, labels), series in sorted(histograms.items()):
            if name != metric:
                continue
            cumulative = 0.0
            for bound, count in zip(buckets, series[2:], strict=False):
                cumulative += count
                le = 'le="' + f"{bound:g}" + '"'
                lines.append(f"{metric}_bucket{_labels(labels, le)} {cumulative:g}")
            inf = 'le="+Inf"'
            lines.append(f"{metric}_bucket{_labels(labels, inf)} {series[0]:g}")
            lines.append(f"{metric}_sum{_labels(labels)} {series[1]:g}")
            lines.append(f"{metric}_count{_labels(labels)} {series[0]:g}")
    return "\n".join(lines) + "\n"

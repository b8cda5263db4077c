"""The batch part: Shipyard's batch predict against in-process, pandas and MLflow baselines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import setup
from .procs import CpuAccount, PeakMemory, wait_for_quiet

DATA = setup.WORK / "data"
OUT = setup.WORK / "batch-out"
QUIET_WAIT = 90.0


def ensure_data(rows: int) -> Path:
    path = DATA / f"rows-{rows}.parquet"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        setup.log(f"generating {rows:,} rows x 20 floats -> {path.name} (one-off)")
        subprocess.run(
            [sys.executable, str(setup.SCRIPTS / "make_data.py"), str(rows), str(path)], check=True
        )
    return path


def warm_page_cache(path: Path) -> float:
    """Read ``path`` once, so every method starts with its input in the page cache.

    The data is ~2 GB on a disk that reads ~100 MB/s; whatever part the kernel dropped
    since the last run would otherwise be paid by the next command alone (the first
    one measured, usually). Returns the seconds the read took (long = it was cold).
    """
    t0 = time.perf_counter()
    with path.open("rb", buffering=0) as fh:
        while fh.read(8 << 20):
            pass
    return time.perf_counter() - t0


def _timed(
    argv: list[str],
    env: dict[str, str] | None = None,
    timeout: float = 3600,
    warm: Path | None = None,
) -> dict[str, Any]:
    """Run a command; wall seconds, peak summed PSS of its tree, and its stdout."""
    import os

    warm_s = warm_page_cache(warm) if warm is not None else None
    busy = wait_for_quiet(QUIET_WAIT)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    with CpuAccount(None) as acc:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        with PeakMemory(proc.pid, interval=0.1) as peak:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} ... exited {proc.returncode}:\n{stderr[-2000:]}")
    return {
        "wall_s": wall,
        "peak_pss_mb": peak.peak / 2**20,
        "peak_processes": peak.peak_procs,
        "busy_before_pct": busy,
        "foreign_cpu_pct": acc.foreign_pct,
        "started_at": when,
        "loadavg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "page_cache_warm_read_s": warm_s,
        "stdout": stdout[-2000:],
        "spawned_at": t0,
    }


def _fresh(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _count_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


@contextmanager
def first_part(out: Path) -> Iterator[dict[str, float | None]]:
    """When (``perf_counter``) the first finished output part (``part-*``, not .tmp)
    appeared: ``first_part_s(seen, result)`` turns it into seconds from the spawn."""
    seen: dict[str, float | None] = {"first_part_s": None}
    t0 = 0.0
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if out.is_dir() and any(not p.name.endswith(".tmp") for p in out.rglob("part-*")):
                seen["first_part_s"] = time.perf_counter() - t0
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def first_part_s(seen: dict[str, float | None], result: dict[str, Any]) -> float | None:
    """Seconds from spawning the command (not from the page-cache warm-up before it) to
    its first finished output part."""
    at = seen["first_part_s"]
    return None if at is None else at - float(result["spawned_at"])


def shipyard(data: Path, rows: int) -> dict[str, Any]:
    out = _fresh(OUT / "shipyard")
    exe = str(Path(sys.executable).parent / "shipyard")
    argv = [
        exe,
        "batch",
        "predict",
        str(setup.MODELS / "shipyard" / "rf"),
        "--input",
        str(data),
        "--output",
        str(out),
        "--format",
        "parquet",
        "--workers",
        "2",
    ]
    with first_part(out) as seen:
        res = _timed(argv, warm=data)
    res["first_part_s"] = first_part_s(seen, res)
    written = _count_rows(out)
    if written != rows:
        raise RuntimeError(f"shipyard batch wrote {written} rows, expected {rows}")
    res.pop("stdout")
    return res | {"rows": rows, "rows_per_s": rows / res["wall_s"], "command": " ".join(argv[1:])}


def baseline(method: str, data: Path, rows: int) -> dict[str, Any]:
    out = _fresh(OUT / f"{method}.parquet")
    argv = [
        sys.executable,
        str(setup.SCRIPTS / "batch_baselines.py"),
        method,
        str(data),
        str(setup.MODELS / "joblib" / "rf" / "model.joblib"),
        str(out),
    ]
    res = _timed(argv, warm=data)
    inside = json.loads(res.pop("stdout").strip().splitlines()[-1])
    if inside["rows"] != rows:
        raise RuntimeError(f"{method} saw {inside['rows']} rows, expected {rows}")
    return res | {
        "rows": rows,
        "rows_per_s": rows / res["wall_s"],
        "inside_s": inside["inside_s"],
        "pinned_to_one_cpu": inside.get("pinned", False),
    }


def mlflow(data: Path, rows: int, subset: int) -> dict[str, Any]:
    """`mlflow models predict` reads its whole input as CSV/JSON into pandas: run it on a
    small and a larger subset, take the per-row cost from the difference (so its fixed
    start-up is counted once), and scale to the full row count."""
    mlflow_exe = str(setup.VENVS / "mlflow" / "bin" / "mlflow")
    env = {"PATH": f"{setup.VENVS / 'mlflow' / 'bin'}:" + __import__("os").environ["PATH"]}
    runs = {}
    for n in (10_000, min(subset, rows)):
        csv = DATA / f"{data.stem}-csv-{n}.csv"
        if not csv.exists():
            subprocess.run(
                [
                    sys.executable,
                    str(setup.SCRIPTS / "batch_baselines.py"),
                    "csv",
                    str(data),
                    "-",
                    str(csv),
                ],
                check=True,
                capture_output=True,
            )
        out = _fresh(OUT / f"mlflow-{n}.json")
        argv = [
            mlflow_exe,
            "models",
            "predict",
            "-m",
            str(setup.MODELS / "mlflow" / "rf"),
            "-i",
            str(csv),
            "-o",
            str(out),
            "-t",
            "csv",
            "--env-manager",
            "local",
        ]
        res = _timed(argv, env=env)
        res.pop("stdout")
        runs[n] = res
    small, big = runs[10_000], runs[min(subset, rows)]
    n_big = min(subset, rows)
    # Per-row cost from the difference, so the start-up counts once. Never scale the
    # subset's own rate: that would count MLflow's start-up once per subset and flatter us.
    per_row = max(0.0, (big["wall_s"] - small["wall_s"]) / (n_big - 10_000))
    projected = small["wall_s"] + per_row * (rows - 10_000)
    method = "per-row cost from the difference of the two runs"
    if big["wall_s"] - small["wall_s"] <= 0.25 * big["wall_s"]:
        method += " (within start-up noise: rerun with a larger --mlflow-batch-rows)"
    return {
        "rows": rows,
        "measured_rows": n_big,
        "measured_wall_s": big["wall_s"],
        "startup_wall_s_10k_rows": small["wall_s"],
        "wall_s": projected,
        "projected": n_big != rows,
        "projection": method,
        "rows_per_s": rows / projected,
        "peak_pss_mb": big["peak_pss_mb"],
        "peak_processes": big["peak_processes"],
        "started_at": small["started_at"],
        "loadavg_1m": [*small["loadavg_1m"], *big["loadavg_1m"]],
        "foreign_cpu_pct": max(small["foreign_cpu_pct"], big["foreign_cpu_pct"]),
    }


def run_all(
    rows: int, mlflow_rows: int, wanted: list[str], previous: dict[str, Any] | None
) -> dict[str, Any]:
    data = ensure_data(rows)
    keep = (previous or {}) if (previous or {}).get("rows") == rows else {}
    result: dict[str, Any] = {
        "rows": rows,
        "data": str(data.relative_to(setup.BENCH)),
        "data_mb": data.stat().st_size / 2**20,
        "errors": {},
    }
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "shipyard": lambda: shipyard(data, rows),
        # The "single-core limit", and the same loop with pyarrow's threads on
        # the second core (shown beside it; the target is against the first).
        "single_core_limit": lambda: baseline("chunked-1cpu", data, rows),
        "chunked_unpinned": lambda: baseline("chunked", data, rows),
        "pandas_all_in_memory": lambda: baseline("pandas", data, rows),
        "mlflow_models_predict": lambda: mlflow(data, rows, mlflow_rows),
    }
    # `--servers batch:shipyard,batch:mlflow_models_predict` runs only the jobs named
    # (e.g. a rerun of one ratio); the others keep their previous results.
    only = {w.removeprefix("batch:") for w in wanted if w.startswith("batch:")}
    for name, job in jobs.items():
        if only and name not in only:
            if name in keep:
                result[name] = keep[name]
            continue
        if not only and name != "mlflow_models_predict" and "shipyard" not in wanted:
            if name in keep:
                result[name] = keep[name]
            continue
        if not only and name == "mlflow_models_predict" and "mlflow" not in wanted:
            if name in keep:
                result[name] = keep[name]
            continue
        setup.log(f"batch: {name} on {rows:,} rows")
        try:
            result[name] = job()
            setup.log(
                f"  {name}: {result[name]['wall_s']:.1f} s, "
                f"{result[name]['rows_per_s']:,.0f} rows/s, "
                f"peak {result[name]['peak_pss_mb']:.0f} MB"
            )
        except Exception as err:
            result["errors"][name] = f"{type(err).__name__}: {err}"[:1500]
            setup.log(f"  {name} FAILED: {err}")
    return result

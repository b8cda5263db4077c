"""Shipyard benchmark, end to end: `make bench` (= .venv/bin/python benchmarks/run.py).

Sets up every peer in its own venv under benchmarks/.work/, trains and saves the models
in each server's format, starts each server on 127.0.0.1 (and stops it by PID), loads it
with wrk / h2load, measures cold start, idle memory and batch inference, and writes
benchmarks/RESULTS.md. Idempotent: venvs, models and the Parquet data are built once.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    batch,
    framing,
    mlflow_flavor,
    online,
    profile,
    report,
    scaleout,
    servers,
    setup,
    trees,
)

ALL_SERVERS = ("shipyard", "mlserver-batch", "mlserver-nobatch", "mlflow", "bare")
SECTIONS = (
    "online",
    "coldstart",
    "batch",
    "trees",
    "profile",
    "framing",
    "mlflow_flavor",
    "scaleout",
)
RESULTS_JSON = setup.WORK / "results.json"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=15.0, help="seconds per load run")
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="warm-up seconds (default 1/5 of --duration, at least 2)",
    )
    p.add_argument(
        "--quick", action="store_true", help="3 s runs, 1M batch rows, 1 cold start each"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="each scenario's time is cut into this many rounds over all servers",
    )
    p.add_argument("--batch-rows", type=int, default=10_000_000)
    p.add_argument(
        "--mlflow-batch-rows",
        type=int,
        default=2_000_000,
        help="rows given to `mlflow models predict` (it reads all into memory); scaled",
    )
    p.add_argument("--cold-starts", type=int, default=3, help="repetitions per server")
    p.add_argument(
        "--servers",
        default=",".join(ALL_SERVERS),
        help="comma list; others keep their previous results",
    )
    p.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma list of " + ", ".join(SECTIONS)
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=90.0,
        help="the machine may be shared: wait up to this many seconds for idle CPU "
        "before each measured run",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="re-render RESULTS.md from the last results.json; measure nothing",
    )
    p.add_argument("--fresh", action="store_true", help="forget previous results.json")
    args = p.parse_args(argv)
    if args.quick:
        args.duration = 3.0
        args.batch_rows = min(args.batch_rows, 1_000_000)
        args.mlflow_batch_rows = min(args.mlflow_batch_rows, 200_000)
        args.cold_starts = 1
        args.rounds = 1
    if args.warmup is None:
        args.warmup = max(2.0, args.duration / 5)
    return args


def versions() -> dict[str, str]:
    def pip_version(python: Path, pkg: str) -> str:
        out = subprocess.run(
            [str(python), "-m", "pip", "show", pkg], capture_output=True, text=True
        )
        for line in out.stdout.splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
        return "?"

    def tool(argv: list[str]) -> str:
        out = subprocess.run(argv, capture_output=True, text=True)
        return (
            (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr) else "?"
        )

    here = Path(sys.executable)
    commit = subprocess.run(
        ["git", "-C", str(setup.REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "shipyard": f"{pip_version(here, 'shipyard')} (git {commit})",
        "scikit-learn (all venvs)": pip_version(here, "scikit-learn"),
        "mlserver": pip_version(setup.venv_python("mlserver"), "mlserver"),
        "mlserver-sklearn": pip_version(setup.venv_python("mlserver"), "mlserver-sklearn"),
        "mlflow": pip_version(setup.venv_python("mlflow"), "mlflow"),
        "starlette (bare)": pip_version(setup.venv_python("starlette"), "starlette"),
        "uvicorn (bare)": pip_version(setup.venv_python("starlette"), "uvicorn"),
        "wrk": tool(["wrk", "-v"]),
        "h2load": tool(["h2load", "--version"]),
    }


def machine() -> dict[str, str]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cores": str(servers.CORES),
        "cpu": model,
        "memory": f"{mem_kb / 2**20:.1f} GiB",
        "kernel": platform.release(),
    }


def main(argv: list[str]) -> int:
    args = parse(argv)
    wanted = [s for s in args.servers.split(",") if s]
    sections = [s for s in args.sections.split(",") if s]
    results: dict[str, Any] = {}
    if RESULTS_JSON.exists() and not args.fresh:
        results = json.loads(RESULTS_JSON.read_text())
    if args.report_only:
        report.write(results, setup.BENCH / "RESULTS.md")
        if results.get("scaleout"):
            scaleout.write_section(setup.BENCH / "RESULTS.md", results["scaleout"])
        return 0
    results.pop("addendum", None)  # a hand-run re-check never outlives a new measurement
    results.setdefault("online", {})
    results.setdefault("cold_start", {})
    results.setdefault("errors", {})

    online.QUIET_WAIT = batch.QUIET_WAIT = args.quiet_wait
    setup.ensure_tools()
    for name in setup.PEER_VENVS:
        setup.ensure_venv(name)
    setup.ensure_models("joblib", Path(sys.executable))
    setup.ensure_models("mlserver", setup.venv_python("mlserver"))
    setup.ensure_models("mlflow", setup.venv_python("mlflow"))
    try:
        setup.ensure_models("shipyard", Path(sys.executable))
    except Exception as err:  # Shipyard's part reports "not available"; peers go on
        results["errors"]["shipyard"] = f"save_model failed: {err}"
        setup.log(f"Shipyard models could not be saved: {err}")

    started = datetime.now(UTC)
    results["meta"] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench  # = .venv/bin/python benchmarks/run.py " + shlex.join(argv),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "versions": versions(),
        "machine": machine(),
    }
    if "online" in sections or "predict_time" not in results:
        # Part of the LR latency bound: measured with the online numbers it is compared to.
        results["predict_time"] = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    str(setup.SCRIPTS / "predict_timing.py"),
                    str(setup.MODELS / "joblib"),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )

    def save() -> None:
        RESULTS_JSON.write_text(json.dumps(results, indent=1))
        report.write(results, setup.BENCH / "RESULTS.md")
        if results.get("scaleout"):
            scaleout.write_section(setup.BENCH / "RESULTS.md", results["scaleout"])

    def attempt(where: str, fn: Any, *a: Any) -> Any:
        try:
            value = fn(*a)
            results["errors"].pop(where, None)
            return value
        except Exception as err:
            results["errors"][where] = f"{type(err).__name__}: {err}"
            setup.log(f"FAILED {where}: {err}")
            traceback.print_exc()
            return None
        finally:
            save()

    if "online" in sections:
        for model in ("rf", "lr"):
            setup.log(
                f"load: {model}, servers {', '.join(wanted)}, interleaved in {args.rounds} rounds"
            )
            for key in wanted:
                results["errors"].pop(f"online/{key}/{model}", None)
                results["errors"].pop(f"grpc/{key}", None) if model == "rf" else None
            got = attempt(
                f"online/{model}",
                online.bench_model,
                model,
                wanted,
                args.duration,
                args.warmup,
                args.rounds,
            )
            if got is not None:
                measured, errors = got
                results["errors"].update(errors)
                for key in wanted:
                    results["online"].setdefault(key, {})[model] = measured.get(key)
                save()
    if "coldstart" in sections:
        keys = [k for k in wanted if k in ("shipyard", "mlserver-batch", "mlflow")]
        setup.log(f"cold start: {', '.join(keys)}")
        got = attempt("cold_start", online.cold_start, keys, "rf", args.cold_starts)
        for key in keys:
            results["cold_start"][key] = (got or {}).get(key)
    if "batch" in sections:
        results["batch"] = attempt(
            "batch",
            batch.run_all,
            args.batch_rows,
            args.mlflow_batch_rows,
            wanted,
            results.get("batch"),
        )
    if "trees" in sections:
        setup.log("trees: compiled evaluator, batch fixed cost, online with and without")
        results["trees"] = attempt(
            "trees", trees.run_all, args.duration, args.warmup, args.rounds, wanted
        )
    if "profile" in sections and "shipyard" in wanted:
        setup.log("profile: shipyard rf, 1 row, c=32, py-spy")
        results["profile"] = attempt("profile", profile.profile_shipyard, min(args.duration, 10))
    if "framing" in sections:
        setup.log("framing: HTTP/2 per-call cost, ours vs the h2 library, same loop")
        results["framing"] = attempt("framing", framing.measure)
    if "mlflow_flavor" in sections:
        setup.log("mlflow flavor: engine shipyard vs engine mlflow, one registered model")
        results["mlflow_flavor"] = attempt(
            "mlflow_flavor", mlflow_flavor.run, args.duration, args.rounds
        )
    if "scaleout" in sections:
        setup.log("scale-out: two-node Ray cluster, ray flavor and --engine ray vs plain Ray")
        data = batch.ensure_data(args.batch_rows)
        results["scaleout"] = attempt(
            "scaleout", scaleout.run, data, args.batch_rows, min(args.duration, 15)
        )
    results["meta"]["elapsed_min"] = (datetime.now(UTC) - started).total_seconds() / 60
    save()
    setup.log(f"wrote {setup.BENCH / 'RESULTS.md'}")
    time.sleep(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

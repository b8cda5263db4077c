"""The ``mlflow`` flavor's two engines on one registered model: ``make bench`` section
``mlflow_flavor`` (``benchmarks/run.py --sections mlflow_flavor``).

A real MLflow tracking server (SQLite, local artifacts) gets the bench's random forest
as registered model ``bench-rf`` version 1; the flavor deploys ``models:/bench-rf/1``
twice, ``engine: shipyard`` and ``engine: mlflow``, one worker each, under a private
SHIPYARD_HOME. Both are loaded with wrk on the same ``POST /invocations`` body
(``{"inputs": rows}``): 1 row at c=32 and 100 rows at c=8, in interleaved rounds. Both
answers are checked against each other first. Everything started is stopped by PID.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import load, procs, setup

WORK = setup.WORK / "mlflow-flavor"
SCENARIOS = (("1 row", 1, 32), ("100 rows", 100, 8))
ENGINES = ("shipyard", "mlflow")


def _ensure_mlflow() -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        setup.log("installing the mlflow extra into the bench venv (one-off)")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-e", f"{setup.REPO}[mlflow]"],
            check=True,
        )


def _register(uri: str) -> Any:
    import mlflow
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    mlflow.set_tracking_uri(uri)
    x, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    model = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0).fit(x, y)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="bench-rf",
            input_example=x[:2],
            pip_requirements=["scikit-learn"],
            # MLflow 3's default (skops) refuses a forest's tree type; pickle, as MLflow 2.
            serialization_format="cloudpickle",
        )
    return x


def _round_robin(
    urls: dict[str, str], lua: Path, connections: int, seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    parts: dict[str, list[load.LoadResult]] = {e: [] for e in urls}
    for index in range(rounds):
        order = list(urls) if index % 2 == 0 else list(reversed(urls))
        for engine in order:
            procs.wait_for_quiet(30)
            parts[engine].append(load.wrk(urls[engine], lua, connections, seconds / rounds))
    out = {}
    for engine, runs in parts.items():
        requests = sum(r.requests for r in runs)
        secs = sum(r.seconds for r in runs)
        p50 = sorted(r.p50_ms for r in runs if r.p50_ms is not None)
        p99 = sorted(r.p99_ms for r in runs if r.p99_ms is not None)
        out[engine] = {
            "rps": requests / secs if secs else 0.0,
            "errors": sum(r.errors for r in runs),
            "p50_ms": p50[len(p50) // 2] if p50 else None,
            "p99_ms": p99[len(p99) // 2] if p99 else None,
        }
    return out


def run(duration: float, rounds: int) -> dict[str, Any]:
    _ensure_mlflow()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    os.environ["SHIPYARD_HOME"] = str(WORK / "home")
    from shipyard.testing import start_mlflow_server

    tracking = start_mlflow_server(WORK, timeout=600)
    uri = tracking.uri
    deployer: Any = None
    try:
        x = _register(uri)
        from shipyard.stack import ComponentType, FlavorRegistry, register_component, register_stack
        from shipyard.store import Store

        with Store.open() as store:
            deployer_type = ComponentType.MODEL_DEPLOYER
            registry = FlavorRegistry(store)
            register_component(
                store, registry, deployer_type, "mlf", "mlflow", {"tracking_uri": uri}
            )
            stack = {
                ComponentType.ARTIFACT_STORE: "default",
                ComponentType.ORCHESTRATOR: "default",
                deployer_type: "mlf",
            }
            register_stack(store, "mlf", stack, activate=True)
        from shipyard.deployers.mlflow import MLFlowDeploymentConfig, MLFlowModelDeployer

        deployer = MLFlowModelDeployer.get_active_model_deployer()
        urls = {}
        for engine in ENGINES:
            service = deployer.deploy_model(
                MLFlowDeploymentConfig(
                    model_uri="models:/bench-rf/1",
                    engine=engine,  # type: ignore[arg-type]
                    workers=1,
                    # Like for like: MLflow's scoring server checks no token either.
                    auth=False,
                    pipeline_step_name=engine,
                ),
                timeout=600,
            )
            urls[engine] = f"{service.endpoint.url}/invocations"
        results: dict[str, Any] = {"scenarios": {}, "tracking_server": "mlflow server, SQLite"}
        for label, rows, connections in SCENARIOS:
            body = WORK / f"body-{rows}.json"
            body.write_text(json.dumps({"inputs": x[:rows].tolist()}))
            answers = {
                e: json.loads(procs.http("POST", u, body.read_bytes(), timeout=60)[1])
                for e, u in urls.items()
            }
            if answers["shipyard"]["predictions"] != answers["mlflow"]["predictions"]:
                raise RuntimeError(f"the engines disagree on {label}: {answers}")
            lua = load.write_lua(WORK / f"body-{rows}.lua", body)
            setup.log(f"mlflow flavor: {label}, c={connections}, engines {', '.join(urls)}")
            results["scenarios"][label] = {
                "connections": connections,
                **_round_robin(urls, lua, connections, duration * 2, rounds),
            }
        return results
    finally:
        if deployer is not None:
            for service in deployer.find_model_server():
                deployer.delete_model_server(service.uuid, force=True)
        tracking.stop()


def section(r: dict[str, Any]) -> list[str]:
    """The RESULTS.md section, from ``results["mlflow_flavor"]``."""
    got = r.get("mlflow_flavor")
    if not got:
        return []
    out = [
        "## The mlflow flavor: engine shipyard vs engine mlflow",
        "",
        "One registered model (`models:/bench-rf/1`, the random forest above, logged with "
        "`mlflow.sklearn`) on a real MLflow tracking server, deployed by the `mlflow` model "
        "deployer twice: `engine: shipyard` (Shipyard's server loading the pyfunc) and "
        "`engine: mlflow` (MLflow's scoring server behind Shipyard's socket keeper), one "
        "worker each, no bearer token on either (MLflow's server has none). "
        'Same body to both: `POST /invocations` with `{"inputs": rows}`; wrk, '
        "interleaved rounds. Rerun: `make bench`, or this section alone: `cd benchmarks && "
        "../.venv/bin/python -m harness.mlflow_flavor`.",
        "",
        f"Measured {got.get('date', '?')} (1-minute load average before: "
        f"{got.get('load_before', '?')}; the machine is shared, so compare the ratio, not the "
        "absolute numbers).",
        "",
        "| rows, concurrency | engine | req/s | p50 ms | p99 ms | errors | shipyard / mlflow |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, row in (got.get("scenarios") or {}).items():
        ours, theirs = row.get("shipyard") or {}, row.get("mlflow") or {}
        ratio = ours.get("rps", 0) / theirs["rps"] if theirs.get("rps") else None
        for engine, cell in (("shipyard", ours), ("mlflow", theirs)):
            shown = f"{ratio:.2f}x" if ratio and engine == "shipyard" else ""
            out.append(
                f"| {label}, c={row.get('connections')} | {engine} | {cell.get('rps', 0):,.0f} "
                f"| {_ms(cell.get('p50_ms'))} | {_ms(cell.get('p99_ms'))} "
                f"| {cell.get('errors', 0)} | {shown} |"
            )
    out += [""]
    if got.get("note"):
        out += [got["note"], ""]
    return out


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


_BEGIN, _END = "<!-- mlflow-flavor:begin -->", "<!-- mlflow-flavor:end -->"


def main() -> int:
    """Run this section alone (no peer venvs needed) and put it into RESULTS.md:
    ``cd benchmarks && ../.venv/bin/python -m harness.mlflow_flavor [--duration S]``."""
    import argparse
    from datetime import UTC, datetime

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results_json = setup.WORK / "results.json"
    results = json.loads(results_json.read_text()) if results_json.exists() else {}
    load_before = round(os.getloadavg()[0], 1)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    got = run(args.duration, args.rounds)
    got.update(date=started, load_before=load_before)
    results["mlflow_flavor"] = got
    if results.get("meta"):  # a full run's results: render the whole page as make bench does
        from harness import report

        results_json.write_text(json.dumps(results, indent=1))
        report.write(results, setup.BENCH / "RESULTS.md")
        return 0
    page = setup.BENCH / "RESULTS.md"
    text = page.read_text() if page.exists() else ""
    block = "\n".join([_BEGIN, *section(results), _END])
    if _BEGIN in text and _END in text:
        text = text[: text.index(_BEGIN)] + block + text[text.index(_END) + len(_END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    page.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 16: the compiled tree evaluator and the fixed cost of a batch job.

- ``evaluator``: per-row cost of a 100k-row batch, evaluator vs each framework's own
  single-threaded predict (bench RF, XGBoost and LightGBM of similar size), with the
  largest difference of their answers;
- ``online``: the same Shipyard server with the evaluator and without it
  (``SHIPYARD_TREES=off``), and as it was before issue 16 (also
  ``SHIPYARD_FAST_JSON=off SHIPYARD_FAST_HTTP=off``), side by side, interleaved rounds;
- ``cheap_job``: 2M rows, a 30-tree depth-6 forest: ``shipyard batch predict --workers 2``
  against a plain single-core script doing the whole job (start-up included), and the
  time from command start to the first predicted shard.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import batch, load, online, servers, setup
from .load import LoadResult
from .procs import wait_for_quiet
from .servers import Target

CHEAP = setup.MODELS / "cheap"

#: A checkout of the commit issue 16 was filed against (``git worktree add DIR b275f10``):
#: when set, its server (that source on this venv's packages) is the ``before`` arm, the
#: issue's own "today": the ``today`` arm is this code with the issue's parts switched off,
#: so it also has every gain made since that is not one of them.
BEFORE_SRC = os.environ.get("SHIPYARD_BENCH_BEFORE_SRC", "")
ONLINE_SCENARIOS = ((1, 32, "1 row, c=32"), (100, 8, "100 rows, c=8"))


def evaluator(rows: int = 100_000) -> list[dict[str, Any]]:
    work = setup.WORK / "trees"
    work.mkdir(parents=True, exist_ok=True)
    wait_for_quiet(batch.QUIET_WAIT)
    out = subprocess.run(
        [
            sys.executable,
            str(setup.SCRIPTS / "tree_timing.py"),
            str(setup.MODELS),
            str(work),
            str(rows),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    for r in result:
        setup.log(
            f"  {r['model']}: ours {r['ours_us_per_row']:.3f} us/row, framework "
            f"{r['framework_us_per_row']:.3f} us/row ({r['ratio']:.2f}x)"
        )
    return result


def _target(key: str, env: dict[str, str]) -> Target:
    target = servers.shipyard("rf")
    target.server.env.update(env)
    target.server.name = key
    target.server.log = servers.RUN / "logs" / f"{key}-rf.log"
    return target


def online_on_off(duration: float, warmup: float, rounds: int) -> dict[str, Any]:
    # "today": the path before issue 16 (no evaluator, orjson + numpy decoding alone,
    # every request through the ASGI app);
    # "framework": no evaluator but the compiled JSON decoding, to split the two gains.
    arms = {
        "evaluator": ("shipyard-trees", {}),
        # The evaluator with every request through the ASGI app: the direct path's share.
        "asgi": ("shipyard-asgi", {"SHIPYARD_FAST_HTTP": "off"}),
        "framework": ("shipyard-framework", {"SHIPYARD_TREES": "off"}),
        "today": (
            "shipyard-today",
            {"SHIPYARD_TREES": "off", "SHIPYARD_FAST_JSON": "off", "SHIPYARD_FAST_HTTP": "off"},
        ),
    }
    if BEFORE_SRC:
        arms["before"] = ("shipyard-before", {"PYTHONPATH": BEFORE_SRC})
    targets: dict[str, Target] = {}
    results: dict[str, Any] = {k: {} for k in arms}
    try:
        # One at a time: free ports are picked when a target is made, and two targets
        # made before either binds can be handed the same one.
        for key, (name, env) in arms.items():
            target = targets[key] = _target(name, env)
            online.start(target)
            online._check_answers(target)
        for rows, conns, label in ONLINE_SCENARIOS:
            busy = wait_for_quiet(online.QUIET_WAIT)
            runners: dict[str, tuple[Target, Callable[[float], LoadResult]]] = {}
            for key, target in targets.items():
                body = setup.write_payload(f"trees-{key}-{rows}.json", target.body(rows))
                lua = load.write_lua(setup.PAYLOADS / f"trees-{key}-{rows}.lua", body)
                load.wrk(target.url, lua, conns, warmup)
                runners[key] = (target, functools.partial(load.wrk, target.url, lua, conns))
            for key, (parts, foreign) in online._rounds(runners, duration, rounds).items():
                row = online._combine(parts, foreign, rows) | {"busy_before_pct": busy}
                results[key][label] = row
                setup.log(
                    f"  {key:10s} {label:14s} {row['rows_per_s']:12,.0f} rows/s, server CPU "
                    f"{row['server_cpu_us_per_request'] or 0:.0f} µs/request, wrk "
                    f"{row['client_cpu_us_per_request'] or 0:.0f} µs/request, other load "
                    f"{row['foreign_cpu_pct'] or 0:.0f}%"
                )
    finally:
        for target in targets.values():
            target.server.stop()
    return results


def _cheap_models() -> None:
    if (CHEAP / ".done").exists():
        return
    code = (
        "import sys, joblib, shipyard\n"
        "from sklearn.datasets import make_classification\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "X, y = make_classification(n_samples=5000, n_features=20, random_state=0)\n"
        "m = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(X, y)\n"
        "out = sys.argv[1]\n"
        "import os; os.makedirs(out, exist_ok=True)\n"
        "joblib.dump(m, out + '/model.joblib')\n"
        "shipyard.save_model(m, out + '/shipyard', input_example=X[:2])\n"
        "open(out + '/.done', 'w').close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(CHEAP)], check=True)


def _cheap_shipyard(data: Path, rows: int) -> dict[str, Any]:
    out = batch._fresh(batch.OUT / "cheap-shipyard")
    exe = str(Path(sys.executable).parent / "shipyard")
    argv = [exe, "batch", "predict", str(CHEAP / "shipyard"), "--input", str(data)]
    argv += ["--output", str(out), "--format", "parquet", "--workers", "2"]
    with batch.first_part(out) as seen:
        ours = batch._timed(argv, warm=data)
    ours.pop("stdout")
    ours |= {
        "rows": rows,
        "rows_per_s": rows / ours["wall_s"],
        "first_part_s": batch.first_part_s(seen, ours),
    }
    if batch._count_rows(out) != rows:
        raise RuntimeError("shipyard batch wrote the wrong number of rows")
    return ours


def _cheap_script(data: Path, rows: int) -> dict[str, Any]:
    script_out = batch._fresh(batch.OUT / "cheap-script.parquet")
    argv = [sys.executable, str(setup.SCRIPTS / "batch_baselines.py"), "chunked-1cpu"]
    argv += [str(data), str(CHEAP / "model.joblib"), str(script_out)]
    script = batch._timed(argv, warm=data)
    inside = json.loads(script.pop("stdout").strip().splitlines()[-1])
    return script | {"rows": inside["rows"], "rows_per_s": rows / script["wall_s"]}


#: Rounds of the cheap job (each: both commands, in alternating order); the ratio is
#: the median of the rounds' ratios, so one round under a burst of outside load does
#: not decide it.
CHEAP_ROUNDS = 5


def cheap_job(rows: int = 2_000_000, rounds: int = CHEAP_ROUNDS) -> dict[str, Any]:
    _cheap_models()
    data = batch.ensure_data(rows)
    runs: list[dict[str, Any]] = []
    for i in range(rounds):
        first, second = (_cheap_shipyard, _cheap_script)[:: 1 if i % 2 == 0 else -1]
        got = {first.__name__: first(data, rows), second.__name__: second(data, rows)}
        ours, script = got["_cheap_shipyard"], got["_cheap_script"]
        ratio = script["wall_s"] / ours["wall_s"]
        runs.append({"shipyard": ours, "single_core_script": script, "ratio": ratio})
        setup.log(
            f"  cheap forest round {i + 1}/{rounds}, {rows:,} rows: shipyard --workers 2 "
            f"{ours['wall_s']:.2f} s (first part {ours['first_part_s'] or 0:.2f} s), "
            f"single-core script {script['wall_s']:.2f} s: {ratio:.2f}x "
            f"(load {ours['loadavg_1m']} / {script['loadavg_1m']}, other load "
            f"{ours['foreign_cpu_pct']:.0f}% / {script['foreign_cpu_pct']:.0f}%)"
        )
    median = statistics.median(r["ratio"] for r in runs)
    # The round whose ratio is the median stands for the run in the tables.
    mid = min(runs, key=lambda r: abs(r["ratio"] - median))
    return {
        "shipyard": mid["shipyard"],
        "single_core_script": mid["single_core_script"],
        "median_ratio": median,
        "rounds": runs,
    }


def run_all(
    duration: float, warmup: float, rounds: int, wanted: list[str] | None = None
) -> dict[str, Any]:
    """Every part, or only those named ``--servers trees:online,trees:cheap_job``."""
    result: dict[str, Any] = {"errors": {}}
    only = {w.removeprefix("trees:") for w in wanted or [] if w.startswith("trees:")}
    parts: dict[str, Callable[[], Any]] = {
        "evaluator": evaluator,
        "cheap_job": cheap_job,
        "online": lambda: online_on_off(duration, warmup, rounds),
    }
    for name, fn in parts.items():
        if only and name not in only:
            continue
        setup.log(f"trees: {name}")
        try:
            result[name] = fn()
        except Exception as err:
            result["errors"][name] = f"{type(err).__name__}: {err}"[:1500]
            setup.log(f"  {name} FAILED: {err}")
    return result

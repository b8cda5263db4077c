"""Issue 16: the compiled tree evaluator and the fixed cost of a batch job.

- ``evaluator``: per-row cost of a 100k-row batch, evaluator vs each framework's own
  single-threaded predict (bench RF, XGBoost and LightGBM of similar size), with the
  largest difference of their answers;
- ``online``: the same Shipyard server with the evaluator and without it
  (``SHIPYARD_TREES=off``: what it did before), side by side, interleaved rounds;
- ``cheap_job``: 2M rows, a 30-tree depth-6 forest: ``shipyard batch predict --workers 2``
  against a plain single-core script doing the whole job (start-up included), and the
  time from command start to the first predicted shard.
"""

from __future__ import annotations

import functools
import json
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
    targets = {
        "evaluator": _target("shipyard-trees", {}),
        "framework": _target("shipyard-framework", {"SHIPYARD_TREES": "off"}),
    }
    results: dict[str, Any] = {k: {} for k in targets}
    try:
        for target in targets.values():
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
                setup.log(f"  {key:10s} {label:14s} {row['rows_per_s']:12,.0f} rows/s")
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


def cheap_job(rows: int = 2_000_000) -> dict[str, Any]:
    _cheap_models()
    data = batch.ensure_data(rows)
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
    script_out = batch._fresh(batch.OUT / "cheap-script.parquet")
    argv = [sys.executable, str(setup.SCRIPTS / "batch_baselines.py"), "chunked-1cpu"]
    argv += [str(data), str(CHEAP / "model.joblib"), str(script_out)]
    script = batch._timed(argv, warm=data)
    inside = json.loads(script.pop("stdout").strip().splitlines()[-1])
    script |= {"rows": inside["rows"], "rows_per_s": rows / script["wall_s"]}
    setup.log(
        f"  cheap forest, {rows:,} rows: shipyard --workers 2 {ours['wall_s']:.2f} s "
        f"(first part {ours['first_part_s'] or 0:.2f} s), single-core script "
        f"{script['wall_s']:.2f} s"
    )
    return {"shipyard": ours, "single_core_script": script}


def run_all(duration: float, warmup: float, rounds: int) -> dict[str, Any]:
    result: dict[str, Any] = {"errors": {}}
    parts: dict[str, Callable[[], Any]] = {
        "evaluator": evaluator,
        "cheap_job": cheap_job,
        "online": lambda: online_on_off(duration, warmup, rounds),
    }
    for name, fn in parts.items():
        setup.log(f"trees: {name}")
        try:
            result[name] = fn()
        except Exception as err:
            result["errors"][name] = f"{type(err).__name__}: {err}"[:1500]
            setup.log(f"  {name} FAILED: {err}")
    return result

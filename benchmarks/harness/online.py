"""The online part: load scenarios, idle memory, gRPC vs REST, cold start."""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from . import load, servers, setup
from .procs import CpuAccount, http, tree_pss, wait_for_quiet, wait_until
from .servers import Target


@dataclass(frozen=True)
class Scenario:
    key: str
    rows: int
    connections: int


SCENARIOS = (
    Scenario("1row_c1", 1, 1),
    Scenario("1row_c32", 1, 32),
    Scenario("100rows_c8", 100, 8),
)
# The machine is shared: before each measured run, wait up to this long for quiet.
QUIET_WAIT = 90.0
# Input specs learned from a running Shipyard, reused by cold-start probes.
_SPECS: dict[str, tuple[str, str]] = {}


def _check_answers(target: Target) -> None:
    for n in (1, 100):
        status, raw = http("POST", target.url, target.body(n))
        if not target.answer_ok(n, status, raw):
            raise RuntimeError(
                f"{target.key}/{target.model}: wrong answer for {n} rows "
                f"(HTTP {status}): {raw[:300]!r}"
            )


def idle_memory(target: Target, settle: float = 3.0) -> dict[str, Any]:
    time.sleep(settle)
    total, procs = tree_pss(target.server.pid)
    return {"pss_mb": total / 2**20, "processes": procs}


def run_scenarios(
    target: Target, duration: float, warmup: float, scenarios: tuple[Scenario, ...] = SCENARIOS
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sc in scenarios:
        body = setup.write_payload(
            f"{target.key}-{target.model}-{sc.rows}.json", target.body(sc.rows)
        )
        lua = load.write_lua(setup.PAYLOADS / f"{target.key}-{target.model}-{sc.rows}.lua", body)
        busy = wait_for_quiet(QUIET_WAIT)
        load.wrk(target.url, lua, sc.connections, warmup)
        with CpuAccount(target.server.pid) as acc:
            res = load.wrk(target.url, lua, sc.connections, duration)
        if not target.server.alive():
            raise RuntimeError(f"{target.key} died under load:\n{target.server.tail()}")
        row = res.as_dict() | {
            "rows_per_s": res.rps * sc.rows,
            "busy_before_pct": busy,
            "foreign_cpu_pct": acc.foreign_pct,
        }
        setup.log(
            f"  {target.key:17s} {target.model:5s} {sc.key:10s} {res.rps:9.1f} req/s  "
            f"p50 {res.p50_ms:.2f} ms  p99 {res.p99_ms:.2f} ms  errors {res.errors}  "
            f"(other load: {busy:.0f}% before, {acc.foreign_pct:.0f}% during)"
        )
        out[sc.key] = row
    return out


def grpc_vs_rest(target: Target, duration: float, warmup: float) -> dict[str, Any]:
    """1 row, 32 connections, h2load for both: gRPC ModelInfer (h2c) and REST (HTTP/1.1)."""
    if target.grpc_port is None:
        raise RuntimeError(f"{target.key} has no gRPC port")
    name, _ = target.input_spec()
    frame = setup.PAYLOADS / f"{target.key}-{target.model}-grpc-1.bin"
    subprocess.run(
        [
            str(setup.venv_python("mlserver")),
            str(setup.SCRIPTS / "grpc_body.py"),
            str(frame),
            target.model,
            name,
            "1",
            str(setup.MODELS / "joblib" / "expected.json"),
            f"127.0.0.1:{target.grpc_port}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    grpc_url = f"http://127.0.0.1:{target.grpc_port}/inference.GRPCInferenceService/ModelInfer"
    grpc_headers = {"content-type": "application/grpc", "te": "trailers"}
    wait_for_quiet(QUIET_WAIT)
    with CpuAccount(target.server.pid) as acc_g:
        g = load.h2load(grpc_url, frame, grpc_headers, 32, duration, warmup, http1=False)
    body = setup.write_payload(f"{target.key}-{target.model}-1.json", target.body(1))
    wait_for_quiet(QUIET_WAIT)
    with CpuAccount(target.server.pid) as acc_r:
        r = load.h2load(
            target.url,
            body,
            {"content-type": "application/json"},
            32,
            duration,
            warmup,
            http1=True,
        )
    # h2load counts HTTP 200 as success; a gRPC error also travels as HTTP 200, so
    # check once more through a real client that the server still answers right.
    subprocess.run(
        [
            str(setup.venv_python("mlserver")),
            str(setup.SCRIPTS / "grpc_body.py"),
            str(frame),
            target.model,
            name,
            "1",
            str(setup.MODELS / "joblib" / "expected.json"),
            f"127.0.0.1:{target.grpc_port}",
        ],
        check=True,
        capture_output=True,
    )
    setup.log(
        f"  {target.key:17s} {target.model}: gRPC {g.rps:.1f} req/s, "
        f"REST {r.rps:.1f} req/s (h2load)"
    )
    return {
        "grpc": g.as_dict() | {"foreign_cpu_pct": acc_g.foreign_pct},
        "rest": r.as_dict() | {"foreign_cpu_pct": acc_r.foreign_pct},
    }


def start(target: Target, timeout: float = 120.0) -> float:
    if target.key == "shipyard" and target.model in _SPECS:
        target.spec = _SPECS[target.model]
    target.server.start()
    try:
        seconds = wait_until(target.server, target.probe(), timeout)
    except Exception:
        target.server.stop()
        raise
    if target.key == "shipyard" and target.spec is not None:
        _SPECS[target.model] = target.spec
    return seconds


def bench_server(
    key: str, model: str, duration: float, warmup: float, with_grpc: bool
) -> dict[str, Any]:
    target = servers.make(key, model)
    result: dict[str, Any] = {"workers": target.workers}
    result["ready_s"] = start(target)
    try:
        _check_answers(target)
        result["idle_memory"] = idle_memory(target)
        result["scenarios"] = run_scenarios(target, duration, warmup)
        if with_grpc:
            try:
                result["grpc"] = grpc_vs_rest(target, duration, warmup)
            except Exception as err:  # reported, not fatal: the rest of the run goes on
                result["grpc_error"] = f"{type(err).__name__}: {err}"
                setup.log(f"  gRPC part failed for {key}: {err}")
        result["memory_after_load"] = idle_memory(target)
    finally:
        target.server.stop()
    return result


def cold_start(key: str, model: str, repeats: int) -> dict[str, Any]:
    """Seconds from spawning the command to the first correct prediction."""
    runs = []
    for _ in range(repeats):
        wait_for_quiet(QUIET_WAIT)
        target = servers.make(key, model)
        try:
            runs.append(start(target, timeout=180))
        finally:
            target.server.stop()
        time.sleep(1)
    setup.log(
        f"  cold start {key:17s} {statistics.median(runs):.2f} s  {[f'{r:.2f}' for r in runs]}"
    )
    return {"runs_s": runs, "median_s": statistics.median(runs)}

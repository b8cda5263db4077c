"""The online part: load scenarios, idle memory, gRPC vs REST, cold start.

The machine may be shared with other work whose load comes and goes. So the servers
of one model run side by side (idle while not measured), and each scenario's time is
cut into rounds that visit every server in turn, rotating the order: outside load then
falls on all servers alike instead of on whichever ran at the wrong minute.
"""

from __future__ import annotations

import functools
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import load, servers, setup
from .load import LoadResult
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
# The machine is shared: before each scenario, wait up to this long for quiet.
QUIET_WAIT = 60.0
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


def _combine(parts: list[LoadResult], foreign: list[float], rows: int) -> dict[str, Any]:
    """Rounds → one row: throughput from the summed requests and time; latency
    percentiles as the median of the rounds' percentiles."""
    requests = sum(p.requests for p in parts)
    seconds = sum(p.seconds for p in parts)

    def med(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    rps = requests / seconds if seconds else 0.0

    def per_request_us(values: list[float | None]) -> float | None:
        if not requests or any(v is None for v in values):
            return None
        return sum(v for v in values if v is not None) / requests * 1e6

    return {
        "server_cpu_us_per_request": per_request_us([p.server_cpu_s for p in parts]),
        "client_cpu_us_per_request": per_request_us([p.client_cpu_s for p in parts]),
        "requests": requests,
        "seconds": seconds,
        "rps": rps,
        "rows_per_s": rps * rows,
        "errors": sum(p.errors for p in parts),
        "p50_ms": med([p.p50_ms for p in parts]),
        "p90_ms": med([p.p90_ms for p in parts]),
        "p99_ms": med([p.p99_ms for p in parts]),
        "mean_ms": med([p.mean_ms for p in parts]),
        "rounds_rps": [round(p.rps, 1) for p in parts],
        "foreign_cpu_pct": statistics.mean(foreign) if foreign else None,
        "generator": parts[0].generator if parts else "",
    }


def _rounds(
    runners: dict[str, tuple[Target, Callable[[float], LoadResult]]],
    duration: float,
    rounds: int,
) -> dict[str, tuple[list[LoadResult], list[float]]]:
    """Visit every runner ``rounds`` times, duration/rounds seconds each, rotating."""
    keys = list(runners)
    got: dict[str, tuple[list[LoadResult], list[float]]] = {k: ([], []) for k in keys}
    slice_s = max(1.0, duration / rounds)
    for i in range(rounds):
        order = keys[i % len(keys) :] + keys[: i % len(keys)]
        for key in order:
            target, run = runners[key]
            with CpuAccount(target.server.pid) as acc:
                res = run(slice_s)
            if not target.server.alive():
                raise RuntimeError(f"{target.key} died under load:\n{target.server.tail()}")
            res.server_cpu_s, res.client_cpu_s = acc.server_cpu_s, acc.client_cpu_s
            got[key][0].append(res)
            got[key][1].append(acc.foreign_pct)
    return got


def _grpc_frame(target: Target, check_only: bool = False) -> Any:
    """Write (and check through grpcio) the gRPC ModelInfer body for 1 row."""
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
    return frame


def bench_model(
    model: str, keys: list[str], duration: float, warmup: float, rounds: int
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """All scenarios for one model over the servers ``keys``; (results, errors)."""
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    targets: dict[str, Target] = {}
    try:
        for key in keys:
            target = servers.make(key, "const" if key == "bare" else model)
            try:
                ready = start(target)
                _check_answers(target)
            except Exception as err:  # reported as "not available"; the others go on
                errors[f"online/{key}/{model}"] = f"{type(err).__name__}: {err}"
                setup.log(f"  {key} {model} FAILED to start or answer: {err}")
                target.server.stop()
                continue
            targets[key] = target
            results[key] = {"workers": target.workers, "ready_s": ready, "scenarios": {}}
            setup.log(f"  {key} {model} ready in {ready:.1f} s")
        for key, target in targets.items():
            results[key]["idle_memory"] = idle_memory(target, settle=1.0)
        for sc in SCENARIOS:
            busy = wait_for_quiet(QUIET_WAIT)
            runners: dict[str, tuple[Target, Callable[[float], LoadResult]]] = {}
            for key, target in targets.items():
                body = setup.write_payload(f"{key}-{model}-{sc.rows}.json", target.body(sc.rows))
                lua = load.write_lua(setup.PAYLOADS / f"{key}-{model}-{sc.rows}.lua", body)
                url, conns = target.url, sc.connections
                load.wrk(url, lua, conns, warmup)
                runners[key] = (target, functools.partial(load.wrk, url, lua, conns))
            for key, (parts, foreign) in _rounds(runners, duration, rounds).items():
                row = _combine(parts, foreign, sc.rows) | {"busy_before_pct": busy}
                results[key]["scenarios"][sc.key] = row
                setup.log(
                    f"  {key:17s} {model:3s} {sc.key:10s} {row['rps']:9.1f} req/s  "
                    f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  "
                    f"errors {row['errors']}  (other load {row['foreign_cpu_pct']:.0f}%)"
                )
        if model == "rf":
            _grpc_part(targets, results, errors, duration, warmup, rounds)
        for key, target in targets.items():
            results[key]["memory_after_load"] = idle_memory(target, settle=1.0)
    finally:
        for target in targets.values():
            target.server.stop()
    return results, errors


def _grpc_part(
    targets: dict[str, Target],
    results: dict[str, dict[str, Any]],
    errors: dict[str, str],
    duration: float,
    warmup: float,
    rounds: int,
) -> None:
    """1 row, 32 connections, h2load for both gRPC ModelInfer (h2c) and REST (HTTP/1.1),
    interleaved the same way, for the servers that speak gRPC."""
    runners: dict[str, tuple[Target, Callable[[float], LoadResult]]] = {}
    frames: dict[str, Any] = {}
    for key in ("shipyard", "mlserver-batch"):
        target = targets.get(key)
        if target is None:
            continue
        try:
            frames[key] = _grpc_frame(target)
        except Exception as err:
            errors[f"grpc/{key}"] = f"{type(err).__name__}: {err}"
            setup.log(f"  gRPC check failed for {key}: {err}")
            continue
        grpc_url = f"http://127.0.0.1:{target.grpc_port}/inference.GRPCInferenceService/ModelInfer"
        gh = {"content-type": "application/grpc", "te": "trailers"}
        body = setup.write_payload(f"{key}-{target.model}-1.json", target.body(1))
        jh = {"content-type": "application/json"}
        frame = frames[key]
        runners[f"{key}|grpc"] = (target, _h2(grpc_url, frame, gh, http1=False))
        runners[f"{key}|rest"] = (target, _h2(target.url, body, jh, http1=True))
    if not runners:
        return
    for _, run in runners.values():
        run(warmup)
    wait_for_quiet(QUIET_WAIT)
    got = _rounds(runners, duration, rounds)
    for key in frames:
        # h2load counts HTTP 200 as success and a gRPC error is also HTTP 200: check the
        # answer again through a real client after the load.
        _grpc_frame(targets[key])
        g = _combine(*got[f"{key}|grpc"], 1)
        r = _combine(*got[f"{key}|rest"], 1)
        results[key]["grpc"] = {"grpc": g, "rest": r}
        setup.log(f"  {key:17s} rf: gRPC {g['rps']:.1f} req/s, REST {r['rps']:.1f} req/s (h2load)")


def _h2(url: str, body: Any, headers: dict[str, str], http1: bool) -> Callable[[float], LoadResult]:
    def run(seconds: float) -> LoadResult:
        return load.h2load(url, body, headers, 32, seconds, 1, http1=http1)

    return run


def cold_start(keys: list[str], model: str, repeats: int) -> dict[str, dict[str, Any]]:
    """Seconds from spawning the command to the first correct prediction, per server
    (repetitions interleaved across servers)."""
    runs: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(repeats):
        for key in keys:
            wait_for_quiet(QUIET_WAIT / 3)
            target = servers.make(key, model)
            try:
                runs[key].append(start(target, timeout=180))
            except Exception as err:
                setup.log(f"  cold start {key} FAILED: {err}")
            finally:
                target.server.stop()
            time.sleep(1)
    out: dict[str, dict[str, Any]] = {}
    for key, values in runs.items():
        if not values:
            continue
        out[key] = {"runs_s": values, "median_s": statistics.median(values)}
        setup.log(f"  cold start {key:17s} {out[key]['median_s']:.2f} s  {values}")
    return out

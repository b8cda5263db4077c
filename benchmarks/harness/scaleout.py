"""The scale-out section: Shipyard on a two-node Ray cluster against plain Ray Serve and
Ray Data, and against the local engine (issue 14). Runs `scripts/ray_bench.py` in the Ray
venv (`.venv-ray`, built by `make test-ray`'s install step) and renders its section of
RESULTS.md between the `scaleout` markers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from . import setup

ROOT = setup.WORK.parent.parent
RAY_VENV = ROOT / ".venv-ray"
START, END = "<!-- scaleout:start -->", "<!-- scaleout:end -->"


def ensure_ray_venv() -> Path:
    python = RAY_VENV / "bin" / "python"
    if not python.exists():
        setup.log("building .venv-ray (make install VENV=.venv-ray EXTRAS=dev,sklearn,ray)")
        subprocess.run(
            ["make", "-C", str(ROOT), "install", "VENV=.venv-ray", "EXTRAS=dev,sklearn,ray"],
            check=True,
        )
    return python


def run(data: Path, rows: int, duration: float, sections: str = "serving,batch") -> dict[str, Any]:
    python = ensure_ray_venv()
    models = setup.WORK / "models-ray"
    for fmt in ("shipyard", "joblib"):
        if not (models / fmt / ".done").exists():
            subprocess.run(
                [str(python), str(setup.SCRIPTS / "make_models.py"), fmt, str(models / fmt)],
                check=True,
            )
    out = setup.WORK / "scaleout.json"
    subprocess.run(
        [
            str(python),
            str(setup.SCRIPTS / "ray_bench.py"),
            str(models / "shipyard" / "rf"),
            str(models / "joblib" / "rf" / "model.joblib"),
            str(data),
            str(rows),
            str(out),
            "--duration",
            str(duration),
            "--sections",
            sections,
        ],
        check=True,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def markdown(r: dict[str, Any]) -> str:
    lines = [
        START,
        "## Scale-out: Ray (issue 14)",
        "",
        "Two-node Ray cluster on 127.0.0.1 (head + one node, 1 CPU each), RF model, "
        f"load average {r['load_before'][0]:.1f} before, {r['load_after'][0]:.1f} after"
        f"{', measured ' + r['date'] if r.get('date') else ''} (the machine is shared: "
        "compare the ratios, measured side by side in one run).",
        "",
        f"- cluster start (head + node): {r['cluster_start_s']:.1f} s; "
        f"idle PSS of both nodes' process groups: {r['cluster_idle_pss_mb']:.0f} MB",
    ]
    s = r.get("serving")
    if s:
        lines += [
            f"- deploy cold start on the running cluster (`ray` flavor, 1 replica): "
            f"{s['deploy_cold_start_s']:.1f} s; plain Serve app: {s['plain_deploy_s']:.1f} s",
            f"- cluster PSS under load: {s['cluster_pss_under_load_mb']:.0f} MB",
            "",
            "| 1 row, c=32 | req/s | errors |",
            "|---|---|---|",
            f"| `ray` flavor (Shipyard replica) | {s['rps']['shipyard']:.0f} | "
            f"{s['errors']['shipyard']} |",
            f"| plain Ray Serve app (`model.predict` per request) | {s['rps']['plain']:.0f} | "
            f"{s['errors']['plain']} |",
            f"| **ratio** (target >= 5x) | **{s['ratio']:.2f}x** | |",
        ]
    b = r.get("batch")
    if b:
        rows = b["rows"]

        def rate(seconds: float) -> str:
            return f"{rows / seconds:,.0f}" if seconds != float("inf") else "-"

        def runs(key: str) -> str:
            return ", ".join(f"{t:.1f}" for t in b.get(key, []))

        plain = b.get("ray_data_s")
        shards = ", ".join(str(n) for n in (b.get("ray_nodes") or {}).values())
        lines += [
            "",
            f"| batch, {rows:,} rows (RF) | best s | rows/s | runs (s) |",
            "|---|---:|---:|---|",
            f"| `--workers 2` (local) | {b['local_workers2_s']:.1f} | "
            f"{rate(b['local_workers2_s'])} | {runs('local_runs')} |",
            f"| `--engine ray` (2 nodes; shards per node: {shards}) | "
            f"{b['engine_ray_s']:.1f} | {rate(b['engine_ray_s'])} | {runs('ray_runs')} |",
        ]
        if plain is not None:
            stopped = plain == float("inf")
            limit = b.get("ray_data_limit_s", 0)
            shown = f"> {limit:.0f} (stopped)" if stopped else f"{plain:.1f}"
            lines.append(f"| plain Ray Data `map_batches` | {shown} | {rate(plain)} | one run |")
        lines.append(f"| **ray vs local** (target >= 0.8x) | **{b['ray_vs_local']:.2f}x** | | |")
        if b.get("local_cpu"):
            cpu_local, cpu_ray = min(b["local_cpu"]), min(b["ray_cpu"])
            lines.append(
                f"| CPU seconds per job: local {cpu_local:.0f}, ray {cpu_ray:.0f} (cluster "
                f"daemons included) | **{b['ray_vs_local_cpu']:.2f}x** | | |"
            )
        if plain is not None:
            lines.append(
                f"| **ray vs Ray Data** (target >= 5x) | "
                f"**{'> ' if stopped else ''}{b['ray_vs_ray_data']:.2f}x** | | |"
            )
        if b.get("load_after_batch"):
            lines.append(f"\nLoad average after the batch part: {b['load_after_batch'][0]:.1f}.")
    for note in r.get("notes", []):
        lines += ["", note]
    lines += [
        "",
        "Rerun: `.venv/bin/python benchmarks/run.py --sections scaleout` (or the script "
        "alone: `.venv-ray/bin/python benchmarks/scripts/ray_bench.py MODEL JOBLIB DATA ROWS "
        "OUT.json [--sections serving,batch] [--ray-data-limit S] [--results-md "
        "benchmarks/RESULTS.md]`).",
        END,
    ]
    return "\n".join(lines)


def write_section(results_md: Path, r: dict[str, Any]) -> None:
    text = results_md.read_text() if results_md.exists() else ""
    section = markdown(r)
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    results_md.write_text(text)

"""The scale-out benchmark on a two-node Ray cluster on 127.0.0.1 (head + one node, 1 CPU
each), run in the Ray venv (`.venv-ray`, `make test-ray` builds it).

Serving: the `ray` flavor's replica against a plain Ray Serve application (the docs' way:
a deployment class calling `model.predict` per request), same cluster, same model, 1 row,
c=32, wrk rounds interleaved. Batch: `shipyard batch predict --workers 2` (local) against
`--engine ray` on the cluster and a plain Ray Data `read_parquet().map_batches()` job.
Also: cluster start, deploy cold start on the running cluster, memory (PSS) idle and
under load. Prints one JSON object.

Usage: python ray_bench.py MODEL_DIR JOBLIB_PATH DATA_PARQUET ROWS OUT_JSON [--duration S]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from harness import load  # noqa: E402
from harness.procs import free_port, pss_bytes  # noqa: E402


def group_pss(pgids: list[int]) -> int:
    """Summed PSS of every live process in the given process groups."""
    from shipyard.services.process import group_members

    return sum(pss_bytes(pid) for g in pgids for pid in group_members(g))


class CpuMeter(threading.Thread):
    """CPU seconds used, while it runs, by the processes under ``roots`` (and by any
    process once seen under them, even after its parent went): /proc sampled every
    ``period`` seconds. Ray's raylets do not account their workers' time to themselves,
    and the local engine's workers are reaped by a loader process, so neither
    ``getrusage(RUSAGE_CHILDREN)`` nor a process group's total sees all of it."""

    def __init__(self, roots: list[int], period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.roots = set(roots)
        self.period = period
        self.done = threading.Event()
        self.first: dict[tuple[int, int], int] = {}
        self.last: dict[tuple[int, int], int] = {}
        self.sample(baseline=True)

    def add_root(self, pid: int) -> None:
        self.roots.add(pid)

    def sample(self, baseline: bool = False) -> None:
        table: dict[int, tuple[int, int, int]] = {}  # pid -> (ppid, start, cpu ticks)
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = (
                int(fields[1]),
                int(fields[19]),
                int(fields[11]) + int(fields[12]),
            )
        for pid, (_, start, ticks) in table.items():
            key = (pid, start)
            if key not in self.last:
                node, hops = pid, 0
                while node in table and node not in self.roots and hops < 64:
                    node, hops = table[node][0], hops + 1
                if node not in self.roots:
                    continue
                # Alive at the baseline: only what it uses from now on counts.
                self.first[key] = ticks if baseline else 0
            self.last[key] = ticks

    def run(self) -> None:
        while not self.done.wait(self.period):
            self.sample()

    def stop(self) -> float:
        self.done.set()
        self.join()
        self.sample()
        ticks = sum(self.last[k] - self.first[k] for k in self.last)
        return ticks / os.sysconf("SC_CLK_TCK")


def timed_job(argv: list[str], roots: list[int]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the job's processes and of ``roots``' trees, stdout)."""
    meter = CpuMeter(roots)
    meter.start()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    meter.add_root(proc.pid)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        meter.stop()
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return wall, meter.stop(), out


def plain_app(joblib_path: str) -> Any:
    from ray import serve
    from starlette.requests import Request

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    class Plain:
        def __init__(self, path: str) -> None:
            import joblib

            self.model = joblib.load(path)

        async def __call__(self, request: Request) -> dict[str, Any]:
            import numpy as np

            data = await request.json()
            return {"predictions": self.model.predict(np.asarray(data["inputs"])).tolist()}

    return Plain.bind(joblib_path)


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def ray_data_job(
    address: str, joblib_path: str, data: str, out: str, limit: float, log_path: str
) -> float:
    """The plain way: Ray Data reads, a callable class predicts, Ray Data writes.

    Tuned only so that it can run at all on two 1-CPU nodes: two map actors of 0.5 CPU
    leave 0.5 free on each node, and a task of Ray Data's default 1 CPU then fits no node
    (the cluster waits forever). The V2 Parquet path's ListFiles task takes 1 CPU and
    cannot be told otherwise, so the V1 read path is used, with reads and writes of
    0.25 CPU. ``limit`` seconds at most (then the job is stopped and ``inf`` returned).
    """
    code = f"""
import os, numpy as np, ray, ray._private.ray_constants as constants
# As shipyard's connect(): a cluster on loopback is reached on loopback (Ray would dial the
# machine's outward address instead and never find the GCS there).
constants.ENABLE_RAY_CLUSTER = False
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
ray.init(address={address!r}, log_to_driver=False)
ray.data.DataContext.get_current().use_datasource_v2 = False
class Predict:
    def __init__(self):
        import joblib
        self.model = joblib.load({joblib_path!r})
    def __call__(self, batch):
        x = np.column_stack([batch[c] for c in sorted(batch, key=lambda c: int(c[1:]))])
        return {{"prediction": self.model.predict(x)}}
ds = ray.data.read_parquet({data!r}, num_cpus=0.25)
ds.map_batches(Predict, concurrency=2, num_cpus=0.5, batch_format="numpy",
               batch_size=65536).write_parquet({out!r}, ray_remote_args={{"num_cpus": 0.25}})
"""
    t0 = time.perf_counter()
    # Its log (Ray Data's progress lines) beside the results, to see how far it got.
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        code_ = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        return float("inf")
    if code_ != 0:
        raise RuntimeError(f"the Ray Data job failed with exit code {code_}")
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("joblib_path")
    p.add_argument("data")
    p.add_argument("rows", type=int)
    p.add_argument("out")
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sections", default="serving,batch")
    p.add_argument("--batch-repeats", type=int, default=2)
    p.add_argument("--results-md", help="also write the scale-out section of this RESULTS.md")
    p.add_argument(
        "--ray-data-limit",
        type=float,
        default=1200.0,
        help="seconds the plain Ray Data job may take (0 = skip it)",
    )
    args = p.parse_args()
    from shipyard.deployers.ray._cluster import start_head, start_worker

    work = Path(tempfile.mkdtemp(prefix="sy-raybench-"))
    os.environ["SHIPYARD_HOME"] = str(work / "home")
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    t0 = time.perf_counter()
    head = start_head(num_cpus=1, object_store_memory=256 << 20, log_path=work / "head.log")
    try:
        node = start_worker(
            head.address, num_cpus=1, object_store_memory=256 << 20, log_path=work / "node.log"
        )
    except BaseException:  # interrupted or failed: no head left behind
        head.stop()
        head.remove_files()
        raise
    results["cluster_start_s"] = time.perf_counter() - t0
    try:
        time.sleep(5)
        results["cluster_idle_pss_mb"] = group_pss([head.pid, node.pid]) / 2**20
        if "serving" in args.sections:
            results["serving"] = serving(args, head.address, [head.pid, node.pid], work)
            Path(args.out).write_text(json.dumps(results, indent=1))  # kept if batch fails
        if "batch" in args.sections:
            # The Serve replicas hold CPUs: the batch jobs get the whole cluster (with
            # them, Ray Data's read tasks starved behind its map actors).
            from ray import serve

            from shipyard._ray.connect import connect

            connect(head.address)
            serve.shutdown()
            batch(args, head.address, work, results, [head.pid, node.pid])
    finally:
        from shipyard._ray.connect import disconnect

        disconnect()
        node.stop()
        head.stop()
        head.remove_files()
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    Path(args.out).write_text(json.dumps(results, indent=1))
    if args.results_md:
        from harness import scaleout

        scaleout.write_section(Path(args.results_md), results)
    print(json.dumps(results, indent=1))


def serving(args: argparse.Namespace, address: str, pgids: list[int], work: Path) -> dict[str, Any]:
    from ray import serve

    from shipyard._ray.connect import connect
    from shipyard.deployers.ray import RayDeploymentConfig, RayModelServer
    from shipyard.store import Store

    port = free_port()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "shipyard.cli.main",
            "model-deployer",
            "register",
            "ray",
            "--flavor=ray",
            f"--address={address}",
            f"--http_port={port}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "shipyard.cli.main",
            "stack",
            "register",
            "r",
            "-a",
            "default",
            "--orchestrator",
            "default",
            "-d",
            "ray",
            "--set",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    from shipyard.deployers.ray import RayModelDeployer

    with Store.open() as store:
        deployer = RayModelDeployer.get_active_model_deployer(store)
        t0 = time.perf_counter()
        service = deployer.deploy_model(
            RayDeploymentConfig(
                model_uri=args.model_dir, model_name="rf", ray_actor_options={"num_cpus": 0.5}
            ),
            timeout=600,
        )
        cold = time.perf_counter() - t0
    assert isinstance(service, RayModelServer)
    connect(address)
    t0 = time.perf_counter()
    serve.run(plain_app(args.joblib_path), name="plain", route_prefix="/plain")
    plain_cold = time.perf_counter() - t0
    row = json.loads((Path(args.model_dir).parent / "expected.json").read_text())["rows"][0]
    v2 = work / "v2.json"
    v2.write_text(
        json.dumps(
            {
                "inputs": [
                    {"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}
                ]
            }
        )
    )
    plain_body = work / "plain.json"
    plain_body.write_text(json.dumps({"inputs": [row]}))
    ours = load.write_lua(work / "a.lua", v2)
    # The replica requires the service's bearer token, as a client sends it.
    headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in service.request_headers().items())
    ours.write_text(headers + ours.read_text())
    targets = {
        "shipyard": (str(service.prediction_url), ours),
        "plain": (f"http://127.0.0.1:{port}/plain", load.write_lua(work / "b.lua", plain_body)),
    }
    for url, lua in targets.values():
        load.wrk(url, lua, 32, 3)  # warm-up
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
    peak = 0
    for _ in range(args.rounds):
        for key, (url, lua) in targets.items():
            res = load.wrk(url, lua, 32, args.duration / args.rounds)
            runs[key].append(res.as_dict())
            if key == "shipyard":
                peak = max(peak, group_pss(pgids))
    rps = {k: sum(r["requests"] for r in v) / sum(r["seconds"] for r in v) for k, v in runs.items()}
    errors = {k: sum(r["errors"] for r in v) for k, v in runs.items()}
    return {
        "rps": rps,
        "errors": errors,
        "ratio": rps["shipyard"] / rps["plain"],
        "deploy_cold_start_s": cold,
        "plain_deploy_s": plain_cold,
        "cluster_pss_under_load_mb": peak / 2**20,
        "runs": runs,
    }


def batch(
    args: argparse.Namespace,
    address: str,
    work: Path,
    results: dict[str, Any],
    pgids: list[int],
) -> dict[str, Any]:
    """Local --workers 2 and --engine ray alternated (``--batch-repeats`` pairs, the best
    of each kept: the machine is shared), then the plain Ray Data job once."""
    exe = [
        sys.executable,
        "-m",
        "shipyard.cli.main",
        "batch",
        "predict",
        args.model_dir,
        "--input",
        args.data,
        "--format",
        "parquet",
        "--no-progress",
        "--json",
        "--overwrite",
    ]
    # CPU seconds per job as well as wall time: with the kernel's autogroup scheduling a
    # loaded machine gives each session (each Ray node, the local job) its own share, so
    # wall time favours the two-node cluster; CPU seconds do not depend on the load.
    out: dict[str, Any] = {
        "rows": args.rows,
        "local_runs": [],
        "ray_runs": [],
        "local_cpu": [],
        "ray_cpu": [],
    }
    results["batch"] = out
    for _ in range(args.batch_repeats):
        wall, cpu, stdout = timed_job(
            [*exe, "--output", str(work / "local"), "--workers", "2"], roots=[]
        )
        out["local_runs"].append(wall)
        out["local_cpu"].append(cpu)
        out["local_rows"] = json.loads(stdout.strip().splitlines()[-1])["rows"]
        # The cluster's processes (daemons and actors) count for the Ray job.
        wall, cpu, stdout = timed_job(
            [*exe, "--output", str(work / "ray"), "--engine", "ray", "--address", address],
            roots=pgids,
        )
        out["ray_runs"].append(wall)
        out["ray_cpu"].append(cpu)
        summary = json.loads(stdout.strip().splitlines()[-1])
        out["ray_nodes"], out["ray_rows"] = summary["nodes"], summary["rows"]
        out["local_workers2_s"] = min(out["local_runs"])
        out["engine_ray_s"] = min(out["ray_runs"])
        out["ray_vs_local"] = out["local_workers2_s"] / out["engine_ray_s"]
        out["ray_vs_local_cpu"] = min(out["local_cpu"]) / min(out["ray_cpu"])
        Path(args.out).write_text(json.dumps(results, indent=1))
    shutil.rmtree(work / "local", ignore_errors=True)
    shutil.rmtree(work / "ray", ignore_errors=True)
    if args.ray_data_limit > 0:
        plain = ray_data_job(
            address,
            args.joblib_path,
            args.data,
            str(work / "plain"),
            args.ray_data_limit,
            args.out + ".raydata.log",
        )
        out["ray_data_s"] = plain
        out["ray_data_limit_s"] = args.ray_data_limit
        # Stopped at the limit: the ratio is at least limit / ours.
        out["ray_vs_ray_data"] = min(plain, args.ray_data_limit) / out["engine_ray_s"]
    out["load_after_batch"] = os.getloadavg()
    return out


if __name__ == "__main__":
    main()

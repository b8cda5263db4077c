"""`make soak`: mixed valid, malformed and hostile traffic against `--workers 2` for a
bounded time (SOAK_SECONDS, default 60), then a summary:

    requests by status; 5xx other than 503/504 (must be 0); dead workers (must be 0);
    worker RSS at start and end (growth must stay under 50 MB); p99 of the valid traffic.

Exits 1 if a bound is broken. Not part of `make test` (it runs for a minute on purpose).
"""

from __future__ import annotations

import collections
import os
import random
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

RSS_BOUND = 50 * 2**20
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">L B L", (len(payload) << 8) | kind, flags, stream_id) + payload


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: collections.Counter[str] = collections.Counter()
        self.valid_latency: list[float] = []

    def add(self, key: str, latency: float | None = None) -> None:
        with self.lock:
            self.status[key] += 1
            if latency is not None:
                self.valid_latency.append(latency)


ROW = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("/v2/models/iris/infer", {"content": b"{not json"}),
    ("/v2/models/iris/infer", {"json": {"inputs": [{"name": "input-0", "shape": [1, 2]}]}}),
    ("/v2/models/nope/infer", {"json": ROW}),
    ("/v2/models/iris/infer", {"content": b"a=b", "headers": {"content-type": "text/plain"}}),
    ("/v2/models/%256d/infer", {"json": ROW}),
    ("/invocations", {"content": b"x" * 2_000_000}),  # over --max-body-size
]


def valid(url: str, tally: Tally, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answer = http.post("/v2/models/iris/infer", json=ROW)
                tally.add(f"valid {answer.status_code}", time.perf_counter() - started)
            except httpx.HTTPError as err:
                tally.add(f"valid {type(err).__name__}")


def malformed(url: str, tally: Tally, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            path, kwargs = random.choice(MALFORMED)
            try:
                answer = http.post(path, **kwargs)
                tally.add(f"malformed {answer.status_code}")
            except httpx.HTTPError as err:
                tally.add(f"malformed {type(err).__name__}")
            time.sleep(0.01)


def hostile(host: str, http_port: int, grpc_port: int, tally: Tally, stop: threading.Event) -> None:
    attacks = ["slow-headers", "abandon", "ping-flood", "rapid-reset", "garbage", "settings"]
    while not stop.is_set():
        attack = random.choice(attacks)
        try:
            if attack == "slow-headers":
                with socket.create_connection((host, http_port), timeout=30) as s:
                    s.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n")
                    while s.recv(65536):
                        pass
            elif attack == "abandon":
                with httpx.Client(base_url=f"http://{host}:{http_port}", timeout=0.001) as http:
                    http.post("/v2/models/iris/infer", json=ROW)
            elif attack == "garbage":
                with socket.create_connection((host, http_port), timeout=30) as s:
                    s.sendall(os.urandom(512) + b"\r\n\r\n")
                    while s.recv(65536):
                        pass
            else:
                with socket.create_connection((host, grpc_port), timeout=5) as s:
                    s.sendall(PREFACE + _frame(4, 0, 0))
                    if attack == "ping-flood":
                        chunk = _frame(6, 0, 0, b"12345678") * 5000
                    elif attack == "settings":
                        chunk = _frame(4, 0, 0) * 5000
                    else:
                        chunk = b"".join(
                            _frame(1, 0x4, sid, b"\x83\x86")  # :method POST, :scheme http
                            + _frame(3, 0, sid, struct.pack(">L", 8))
                            for sid in range(1, 4001, 2)
                        )
                    for _ in range(20):
                        s.sendall(chunk)
            tally.add(f"hostile {attack} done")
        except (OSError, httpx.HTTPError):
            tally.add(f"hostile {attack} cut off")


def main() -> int:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import shipyard
    from shipyard.testing import start_server

    seconds = float(os.environ.get("SOAK_SECONDS", "60"))
    with tempfile.TemporaryDirectory(prefix="shipyard-soak-") as tmp:
        x, y = load_iris(return_X_y=True)
        model = Path(tmp) / "iris"
        shipyard.save_model(LogisticRegression(max_iter=500).fit(x, y), model, input_example=x[:2])
        args = ["--max-body-size", "1000000", "--request-timeout", "5"]
        with start_server(model, workers=2, grpc=True, args=args) as server:
            assert server.grpc_port is not None
            pids = [int(w["pid"]) for w in server.status()["workers"]]
            tally = Tally()
            stop = threading.Event()
            # Warm up, so the start figure is a served worker's, not a fresh one's.
            valid(server.url, Tally(), _after(3.0))
            rss_start = sum(_rss(p) for p in pids)
            threads = [
                threading.Thread(target=valid, args=(server.url, tally, stop)) for _ in range(6)
            ]
            threads += [threading.Thread(target=malformed, args=(server.url, tally, stop))]
            threads += [
                threading.Thread(
                    target=hostile,
                    args=("127.0.0.1", server.http_port, server.grpc_port, tally, stop),
                )
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            print(f"soak: {seconds:g} s of mixed traffic against --workers 2 ...", flush=True)
            time.sleep(seconds)
            stop.set()
            for thread in threads:
                thread.join(60)
            time.sleep(1.0)
            now = [int(w["pid"]) for w in server.status()["workers"]]
            dead = len(set(pids) - set(now))
            rss_end = sum(_rss(p) for p in now)
    return _report(tally, dead, rss_start, rss_end)


def _after(seconds: float) -> threading.Event:
    event = threading.Event()
    threading.Timer(seconds, event.set).start()
    return event


def _report(tally: Tally, dead: int, rss_start: int, rss_end: int) -> int:
    print("requests by status:")
    for key, count in sorted(tally.status.items()):
        print(f"  {key:<40} {count:>8}")
    bad_5xx = sum(
        n
        for key, n in tally.status.items()
        if key.split()[-1].isdigit()
        and key.split()[-1].startswith("5")
        and key.split()[-1] not in ("503", "504")
    )
    latencies = np.array(tally.valid_latency or [0.0])
    p99 = float(np.percentile(latencies, 99)) * 1000
    growth = rss_end - rss_start
    print(f"5xx other than 503/504: {bad_5xx}")
    print(f"dead workers: {dead}")
    print(
        f"worker RSS: start {rss_start / 2**20:.1f} MiB, end {rss_end / 2**20:.1f} MiB "
        f"(growth {growth / 2**20:+.1f} MiB, bound {RSS_BOUND / 2**20:.0f} MiB)"
    )
    print(f"valid traffic: {len(tally.valid_latency)} requests, p99 {p99:.1f} ms")
    ok = bad_5xx == 0 and dead == 0 and growth < RSS_BOUND
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

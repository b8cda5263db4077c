"""Where Shipyard's workers spend their time under load: py-spy over the whole tree."""

from __future__ import annotations

import collections
import re
import subprocess
import time
from typing import Any

from . import load, online, servers, setup

_FRAME = re.compile(r"^(?P<fn>.+?) \((?P<file>[^:]+):\d+\)$")


def _summarise(raw: str, top: int) -> dict[str, Any]:
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        # Only the worker processes: they do the serving (the supervisor just waits).
        if len(frames) < 2 or "shipyard.serving.worker" not in frames[1]:
            continue
        total += n
        seen: set[str] = set()
        for frame in frames[2:]:
            m = _FRAME.match(frame)
            if m is None:
                continue
            fn, path = m.group("fn"), m.group("file")
            parts = path.split("/")
            key = f"{fn} ({'/'.join(parts[-2:])})"
            if key not in seen:
                seen.add(key)
                inclusive[key] += n
    # Frames on (nearly) every stack are the process entry chain: no information.
    rows = [
        {"frame": k, "pct": v / total * 100}
        for k, v in inclusive.most_common(top + 12)
        if total and v / total < 0.9
    ][:top]
    return {"samples": total, "top": rows}


def profile_shipyard(seconds: float, top: int = 25) -> dict[str, Any]:
    """py-spy record (raw stacks) of the RF server at 1 row, 32 connections."""
    target = servers.make("shipyard", "rf")
    online.start(target)
    spy_bin = setup.VENVS / "tools" / "bin" / "py-spy"
    out = setup.WORK / "profile-shipyard-rf-c32.txt"
    try:
        body = setup.write_payload("shipyard-rf-1.json", target.body(1))
        lua = load.write_lua(setup.PAYLOADS / "shipyard-rf-1.lua", body)
        load.wrk(target.url, lua, 32, 2)
        spy = subprocess.Popen(
            [
                str(spy_bin),
                "record",
                "--pid",
                str(target.server.pid),
                "--subprocesses",
                "--duration",
                str(round(seconds)),
                "--rate",
                "100",
                "--format",
                "raw",
                "-o",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        res = load.wrk(target.url, lua, 32, seconds)
        spy.wait(timeout=seconds + 60)
    finally:
        target.server.stop()
    summary = _summarise(out.read_text(), top)
    summary |= {"rps_while_profiled": res.rps, "raw": str(out.relative_to(setup.BENCH))}
    setup.log(f"  profile: {summary['samples']} samples, top: {summary['top'][:3]}")
    return summary

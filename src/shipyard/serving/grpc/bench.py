"""A bounded gRPC ``ModelInfer`` load loop, for measuring a running server.

    python -m shipyard.serving.grpc.bench 127.0.0.1:8081 MODEL --concurrency 32 --duration 5

It reads the model's metadata, builds one random request of ``--rows`` rows that fits
the first input, and keeps ``--concurrency`` calls in flight for ``--duration`` seconds
over ``--channels`` separate connections (one connection lands on one worker process, so
use at least as many channels as the server has workers). It prints one JSON line:
requests/s, errors and latency percentiles. ``--h2load-body FILE`` also writes the
request as a length-prefixed gRPC message, the body h2load needs to drive the same call
from C (``h2load -H 'content-type: application/grpc' -H 'te: trailers' -d FILE ...``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import grpc.aio
import numpy as np

from shipyard.models import dtype_for_datatype
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb
from shipyard.serving.grpc._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.serving.grpc.codec import encode_infer_request
from shipyard.serving.types import InferenceRequest, Tensor

__all__ = ["LoadResult", "build_request", "run_load"]


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    concurrency: int
    channels: int
    raw: bool


def _channel(target: str) -> grpc.aio.Channel:
    # A local subchannel pool: otherwise channels to one target share a connection, and
    # every call would land on the same worker process.
    return grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


async def build_request(
    target: str, model: str, rows: int, *, raw: bool, seed: int = 0
) -> pb.ModelInferRequest:
    """A request with ``rows`` random rows for ``model``'s first input."""
    async with _channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name=model))
    spec = meta.inputs[0]
    if spec.datatype not in ("FP16", "FP32", "FP64", "INT32", "INT64"):
        raise SystemExit(f"bench: input {spec.name!r} is {spec.datatype}; only numbers here")
    shape = [rows, *(max(int(d), 1) for d in list(spec.shape)[1:])]
    data = np.random.default_rng(seed).normal(size=shape).astype(dtype_for_datatype(spec.datatype))
    tensor = Tensor(spec.name, spec.datatype, shape, data)
    return encode_infer_request(model, InferenceRequest(inputs=[tensor]), raw=raw)


async def run_load(
    target: str,
    request: pb.ModelInferRequest,
    *,
    concurrency: int = 32,
    duration: float = 5.0,
    channels: int = 4,
) -> LoadResult:
    """Keep ``concurrency`` calls in flight for ``duration`` seconds; count and time them."""
    opened = [_channel(target) for _ in range(max(1, channels))]
    stubs = [pb_grpc.GRPCInferenceServiceStub(c) for c in opened]  # type: ignore[no-untyped-call]
    latencies: list[float] = []
    errors = 0
    try:
        for stub in stubs:  # connect and warm up every channel before the clock starts
            await stub.ModelInfer(request)
        start = time.perf_counter()
        deadline = start + duration

        async def caller(index: int) -> None:
            nonlocal errors
            call = stubs[index % len(stubs)].ModelInfer
            now = time.perf_counter()
            while now < deadline:
                try:
                    await call(request)
                except grpc.aio.AioRpcError:
                    errors += 1
                done = time.perf_counter()
                latencies.append(done - now)
                now = done

        await asyncio.gather(*(caller(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    finally:
        for channel in opened:
            await channel.close()
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        if not ordered:
            return math.nan
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return LoadResult(
        requests=len(latencies),
        errors=errors,
        seconds=round(elapsed, 3),
        requests_per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(0.50), 3),
        p99_ms=round(percentile(0.99), 3),
        concurrency=concurrency,
        channels=len(stubs),
        raw=bool(request.raw_input_contents),
    )


def _h2load_body(request: pb.ModelInferRequest) -> bytes:
    payload: bytes = request.SerializeToString()
    # gRPC framing: 1 byte "compressed" flag, 4 bytes big-endian length, the message.
    return struct.pack(">BI", 0, len(payload)) + payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipyard.serving.grpc.bench")
    parser.add_argument("target", help="host:port of the gRPC server")
    parser.add_argument("model", help="model name")
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--contents", action="store_true", help="typed contents, not raw")
    parser.add_argument("--h2load-body", type=Path, help="also write the framed request here")
    args = parser.parse_args(argv)

    async def go() -> LoadResult:
        request = await build_request(args.target, args.model, args.rows, raw=not args.contents)
        if args.h2load_body:
            args.h2load_body.write_bytes(_h2load_body(request))
        return await run_load(
            args.target,
            request,
            concurrency=args.concurrency,
            duration=args.duration,
            channels=args.channels,
        )

    print(json.dumps(asdict(asyncio.run(go()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

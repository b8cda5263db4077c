"""Build a gRPC ModelInfer request as an HTTP/2 body for h2load, and check it for real.

Runs in the MLServer venv and uses MLServer's own generated V2 stubs: an existing V2
client, unchanged, is what talks to every server here.

Usage: python grpc_body.py OUT_FILE MODEL_NAME INPUT_NAME N_ROWS EXPECTED_JSON [HOST:PORT]
Writes the length-prefixed gRPC message to OUT_FILE; with HOST:PORT, first sends it once
through grpcio and exits non-zero unless the answer holds the expected predictions.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import grpc
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

out, model, input_name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
expected = json.loads(Path(sys.argv[5]).read_text())
rows = expected["rows"][:n]
request = pb.ModelInferRequest(
    model_name=model,
    inputs=[
        pb.ModelInferRequest.InferInputTensor(
            name=input_name,
            datatype="FP64",
            shape=[n, 20],
            contents=pb.InferTensorContents(fp64_contents=[v for r in rows for v in r]),
        )
    ],
)
message = request.SerializeToString()
# gRPC framing: 1 byte "not compressed", 4 bytes big-endian length, the message.
Path(out).write_bytes(struct.pack(">BI", 0, len(message)) + message)

if len(sys.argv) > 6:
    with grpc.insecure_channel(sys.argv[6]) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    want = [int(v) for v in expected["predictions"][model][:n]]
    got = []
    for i, output in enumerate(reply.outputs):
        c = output.contents
        values = list(c.int64_contents or c.int32_contents or c.fp64_contents or c.fp32_contents)
        if not values and i < len(reply.raw_output_contents):
            import numpy as np

            dtype = {"INT64": "<i8", "INT32": "<i4", "FP64": "<f8", "FP32": "<f4"}[output.datatype]
            values = np.frombuffer(reply.raw_output_contents[i], dtype=dtype).tolist()
        got.append([int(v) for v in values])
    if want not in got:
        sys.exit(f"gRPC answer {got} does not hold the expected predictions {want}")
    print("grpc answer ok")

"""The committed stubs equal a fresh generation, import cleanly and keep the public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import shipyard.serving.grpc as grpc_package
from shipyard.serving.grpc.generate import PROTO_FILE, STUB_FILES, generate

COMMITTED = PROTO_FILE.with_name("_generated")


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    written = generate(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(STUB_FILES)
    for path in written:
        committed = COMMITTED / path.name
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} is stale; run `make proto` and commit the result."
        )


def test_generated_grpc_module_imports_its_sibling_relatively(tmp_path: Path) -> None:
    text = (COMMITTED / "grpc_predict_v2_pb2_grpc.py").read_text(encoding="utf-8")
    assert "from . import grpc_predict_v2_pb2 as" in text
    assert "\nimport grpc_predict_v2_pb2" not in text


def test_stubs_import_without_any_warning() -> None:
    # A fresh interpreter with warnings as errors: protobuf's gencode/runtime version check
    # and grpc's version check both run at import.
    code = (
        "from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb, "
        "grpc_predict_v2_pb2_grpc as g; "
        "assert pb.DESCRIPTOR.package == 'inference'; "
        "print(sorted(pb.DESCRIPTOR.services_by_name['GRPCInferenceService'].methods_by_name))"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip() == str(
        sorted(
            [
                "ModelInfer",
                "ModelMetadata",
                "ModelReady",
                "ServerLive",
                "ServerMetadata",
                "ServerReady",
            ]
        )
    )


def test_importing_the_package_does_not_import_grpc() -> None:
    code = "import sys, shipyard.serving.grpc; print('grpc' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_public_api() -> None:
    assert grpc_package.__all__ == ["GrpcServerHandle", "start_grpc_server"]
    assert callable(grpc_package.start_grpc_server)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = grpc_package.nope


def test_messages_pickle_by_their_package_module() -> None:
    # Ray Serve's gRPC proxy pickles each request on its way to a replica: the classes
    # must be found under the module they are imported from.
    import pickle

    from shipyard.serving.grpc._generated import grpc_predict_v2_pb2 as pb

    assert pb.ModelInferRequest.__module__ == pb.__name__
    request = pb.ModelInferRequest(model_name="m", inputs=[{"name": "x", "shape": [1]}])
    assert pickle.loads(pickle.dumps(request)) == request

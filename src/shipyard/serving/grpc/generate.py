"""Regenerate the gRPC stubs in ``_generated/`` from ``grpc_predict_v2.proto``.

Run ``make proto`` (or ``python -m shipyard.serving.grpc.generate [OUT_DIR]``). Needs
grpcio-tools (the ``dev`` extra). The committed stubs must equal a fresh run; a test
regenerates into a temporary folder and compares.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

from shipyard.errors import MissingDependencyError, ShipyardError

__all__ = ["PROTO_FILE", "STUB_FILES", "generate"]

PROTO_FILE = Path(__file__).with_name("grpc_predict_v2.proto")
#: The files a run writes, relative to the output folder.
STUB_FILES = (
    "__init__.py",
    "grpc_predict_v2_pb2.py",
    "grpc_predict_v2_pb2.pyi",
    "grpc_predict_v2_pb2_grpc.py",
)

_INIT = (
    '"""Generated from grpc_predict_v2.proto by shipyard.serving.grpc.generate; do not edit."""\n'
)

# protoc writes a top-level import, which only works with the folder on sys.path;
# inside a package the stubs must import their sibling relatively.
_ABSOLUTE_IMPORT = re.compile(r"^import grpc_predict_v2_pb2 as ", re.MULTILINE)
# protoc names the messages' module "grpc_predict_v2_pb2", which does not import inside the
# package: pickle (Ray Serve's gRPC proxy pickles each request to its replica) could not
# find their classes. The module's real name makes them picklable.
_MODULE_NAME = "(DESCRIPTOR, 'grpc_predict_v2_pb2', _globals)"


def generate(out_dir: Path) -> list[Path]:
    """Write the stubs for ``grpc_predict_v2.proto`` into ``out_dir``; return their paths."""
    try:
        from grpc_tools import protoc
    except ImportError as err:
        raise MissingDependencyError("grpcio-tools", "dev", "generating gRPC stubs") from err

    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_FILE.parent}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        PROTO_FILE.name,
    ]
    code = protoc.main(args)
    if code != 0:
        raise ShipyardError(
            f"protoc failed (exit code {code}) on {PROTO_FILE}; its error is printed above. "
            "Fix the .proto file and run `make proto` again."
        )

    grpc_module = out_dir / "grpc_predict_v2_pb2_grpc.py"
    text = grpc_module.read_text(encoding="utf-8")
    fixed, count = _ABSOLUTE_IMPORT.subn("from . import grpc_predict_v2_pb2 as ", text)
    if count != 1:
        raise ShipyardError(
            f"{grpc_module} does not import grpc_predict_v2_pb2 the way this generator "
            "expects (grpcio-tools changed its output?); update _ABSOLUTE_IMPORT in "
            f"{__file__}."
        )
    grpc_module.write_text(fixed, encoding="utf-8")
    messages = out_dir / "grpc_predict_v2_pb2.py"
    text = messages.read_text(encoding="utf-8")
    if _MODULE_NAME not in text:
        raise ShipyardError(
            f"{messages} does not name its module the way this generator expects "
            f"(protobuf changed its output?); update _MODULE_NAME in {__file__}."
        )
    messages.write_text(text.replace(_MODULE_NAME, "(DESCRIPTOR, __name__, _globals)"))
    (out_dir / "__init__.py").write_text(_INIT, encoding="utf-8")
    return [out_dir / name for name in STUB_FILES]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path(__file__).with_name("_generated")
    for path in generate(out_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

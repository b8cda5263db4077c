"""Idempotent set-up: peer virtual environments, load generators, models, payloads."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
WORK = BENCH / ".work"
SCRIPTS = BENCH / "scripts"
VENVS = WORK / "venvs"
MODELS = WORK / "models"
PAYLOADS = WORK / "payloads"

# Each peer gets its own venv from a pinned requirements file.
PEER_VENVS = ("mlserver", "mlflow", "starlette", "tools")


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def ensure_venv(name: str) -> Path:
    req = BENCH / f"requirements-{name}.txt"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()[:16]
    stamp = VENVS / name / f".installed-{digest}"
    if stamp.exists():
        return venv_python(name)
    log(f"creating venv {name} from {req.name} (one-off)")
    if not venv_python(name).exists():
        # From the running interpreter's base Python: the same version for every peer.
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
    pip = [str(venv_python(name)), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(req)], check=True)
    for old in (VENVS / name).glob(".installed-*"):
        old.unlink()
    stamp.write_text(req.name)
    return venv_python(name)


def ensure_tools() -> None:
    """wrk and h2load from Debian's packages, installed once if missing."""
    missing = [
        pkg
        for tool, pkg in (("wrk", "wrk"), ("h2load", "nghttp2-client"))
        if shutil.which(tool) is None
    ]
    if not missing:
        return
    log(f"installing {' '.join(missing)} with apt-get")
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", *missing], check=True, stdout=subprocess.DEVNULL
    )


def ensure_models(fmt: str, python: Path) -> Path:
    out = MODELS / fmt
    if (out / ".done").exists():
        return out
    log(f"training and saving the models for {fmt}")
    subprocess.run([str(python), str(SCRIPTS / "make_models.py"), fmt, str(out)], check=True)
    return out


def expected(fmt: str) -> dict[str, object]:
    return dict(json.loads((MODELS / fmt / "expected.json").read_text()))


def rows(n: int) -> list[list[float]]:
    data = expected("joblib")["rows"]
    if not isinstance(data, list):
        raise TypeError("expected.json rows must be a list")
    return [list(map(float, r)) for r in data[:n]]


def oip_body(n: int, input_name: str, datatype: str = "FP64") -> bytes:
    body = {
        "inputs": [
            {
                "name": input_name,
                "shape": [n, 20],
                "datatype": datatype,
                "data": [v for r in rows(n) for v in r],
            }
        ]
    }
    return json.dumps(body).encode()


def mlflow_body(n: int) -> bytes:
    body = {"dataframe_split": {"columns": [f"f{i}" for i in range(20)], "data": rows(n)}}
    return json.dumps(body).encode()


def write_payload(name: str, data: bytes) -> Path:
    PAYLOADS.mkdir(parents=True, exist_ok=True)
    path = PAYLOADS / name
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path

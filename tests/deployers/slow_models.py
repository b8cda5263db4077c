"""Models whose load takes its time (``slow_load_predictor.SlowLoad``) and the one number
they answer: what the interrupted-update and deploy-progress tests deploy and ask."""

from __future__ import annotations

from pathlib import Path

import httpx

import shipyard
from shipyard.deployers.local import LocalModelServer

from .slow_load_predictor import SlowLoad


def slow_model(root: Path, name: str, answer: float, delay: float, marks: Path) -> str:
    """Save a model under ``root/name`` that loads for ``delay`` s, notes in ``marks`` that
    it started loading, then answers ``answer`` to every row; its URI."""
    path = shipyard.save_model(None, root / name, predictor=SlowLoad)
    (path / "delay").write_text(str(delay))
    (path / "answer").write_text(str(answer))
    (path / "marks").write_text(str(marks))
    return str(path)


def answer_of(server: LocalModelServer) -> float:
    """The number ``server`` answers for one row (asserting the request succeeded)."""
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]}
    response = httpx.post(
        str(server.prediction_url), json=body, headers=server.request_headers(), timeout=30
    )
    assert response.status_code == 200, response.text
    return float(response.json()["outputs"][0]["data"][0])

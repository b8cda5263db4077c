"""The shared test helpers of ``shipyard.testing``: the Prometheus-text reader and the
polling helpers (every wait has its own deadline)."""

from __future__ import annotations

import asyncio

import pytest

from shipyard.testing import async_wait_until, metric_value, parse_metrics, wait_until

TEXT = """\
# HELP shipyard_requests_total Requests.
# TYPE shipyard_requests_total counter
shipyard_requests_total{model="m",protocol="v2",status="200"} 3
shipyard_requests_total{model="m",protocol="v2",status="404"} 1.0
shipyard_batch_requests_count{model="p \\"q\\""} 4
process_up 1
"""


def test_parse_metrics_reads_every_sample() -> None:
    samples = parse_metrics(TEXT)
    key = frozenset({("model", "m"), ("protocol", "v2"), ("status", "200")})
    assert samples[("shipyard_requests_total", key)] == 3.0
    assert samples[("process_up", frozenset())] == 1.0
    assert len(samples) == 4


def test_metric_value_by_keywords_or_as_written() -> None:
    assert metric_value(TEXT, "shipyard_requests_total", model="m", protocol="v2", status="404")
    written = 'shipyard_requests_total{model="m",protocol="v2",status="200"}'
    assert metric_value(TEXT, written) == 3.0
    assert metric_value(TEXT, 'shipyard_requests_total{model="other"}') == 0.0
    with pytest.raises(AssertionError, match="not in the metrics"):
        metric_value(TEXT, "nope", default=None)


def test_waits_end_at_their_deadline() -> None:
    wait_until(lambda: True, "nothing")
    with pytest.raises(AssertionError, match=r"gave up after 0\.2 s waiting for never"):
        wait_until(lambda: False, "never", timeout=0.2)
    with pytest.raises(AssertionError, match="waiting for never"):
        asyncio.run(async_wait_until(lambda: False, "never", timeout=0.2, interval=0))

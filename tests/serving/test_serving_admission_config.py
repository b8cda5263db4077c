"""A model's own request timeout and queue bound win over the server's; the default queue
bound follows the batch size and the number of workers."""

from __future__ import annotations

from shipyard.serving.config import BatchingConfig, ModelSpec, ServerConfig


def test_a_models_own_limits_win() -> None:
    config = ServerConfig(
        models=[ModelSpec(uri="a", request_timeout=2.5, max_queue=5), ModelSpec(uri="b")],
        request_timeout=9,
        max_queue=40,
        workers=2,
    )
    own, server_wide = (config.admission_for(spec) for spec in config.models)
    assert (own.request_timeout, own.max_queue) == (2.5, 5)
    assert (server_wide.request_timeout, server_wide.max_queue) == (9, 40)


def test_the_default_queue_follows_batch_size_and_workers() -> None:
    def queue(workers: int, batch: int) -> int:
        config = ServerConfig(
            models=[ModelSpec(uri="a")],
            workers=workers,
            batching=BatchingConfig(max_batch_size=batch),
        )
        return config.admission_for(config.models[0]).max_queue

    assert queue(2, 1024) == 1024  # two full batches spread over two workers
    assert queue(4, 1024) == 512
    assert queue(2, 8) == 64  # never below 64

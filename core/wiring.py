"""The wiring shared with Terraform (``core/wiring.json``): the HTTP routes, batch sizes, windows, limits."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

WIRING_PATH = Path(__file__).parent / "wiring.json"


@dataclass(frozen=True)
class QueueWiring:
    """How the SQS queue feeds the worker (an event source mapping on AWS, a poller locally)."""

    function_timeout_seconds: int
    batch_size: int
    maximum_batching_window_seconds: int
    maximum_concurrency: int
    max_receive_count: int
    visibility_timeout_seconds: int
    queue_message_retention_seconds: int
    dlq_message_retention_seconds: int


@dataclass(frozen=True)
class StreamConsumerWiring:
    """How the Kinesis stream feeds one consumer."""

    name: str
    handler: str
    function_timeout_seconds: int
    batch_size: int
    maximum_batching_window_seconds: int
    starting_position: str
    bisect_batch_on_function_error: bool
    maximum_retry_attempts: int
    maximum_record_age_in_seconds: int
    parallelization_factor: int


@dataclass(frozen=True)
class RouteWiring:
    """One route of the HTTP API (an API Gateway route locally emulated by ``local/http.py``)."""

    key: str  # API Gateway's route key: "METHOD /path", a path parameter written {name}
    authorizer: bool  # guarded by the API key authorizer when auth is on
    function: str  # the function that serves it, a key of ``Wiring.handlers``
    key_in_function: bool = False  # the function checks an API key itself (ingest/keyauth.py)

    @property
    def method(self) -> str:
        return self.key.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.key.split(" ", 1)[1]


@dataclass(frozen=True)
class Wiring:
    routes: tuple[RouteWiring, ...]
    worker: QueueWiring
    stream_retention_hours: int
    stream_shard_count: int
    stream_consumers: tuple[StreamConsumerWiring, ...]
    handlers: dict[str, str]


@functools.cache
def load(path: Path = WIRING_PATH) -> Wiring:
    raw: dict[str, Any] = orjson.loads(path.read_bytes())
    return Wiring(
        routes=tuple(RouteWiring(key=key, **cfg) for key, cfg in raw["routes"].items()),
        worker=QueueWiring(**raw["worker"]),
        stream_retention_hours=raw["stream"]["retention_hours"],
        stream_shard_count=raw["stream"]["shard_count"],
        stream_consumers=tuple(
            StreamConsumerWiring(name=name, **cfg) for name, cfg in raw["stream_consumers"].items()
        ),
        handlers=dict(raw["handlers"]),
    )

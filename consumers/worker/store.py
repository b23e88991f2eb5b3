"""The worker's storage adapter: ``DynamoEventStore`` behind the ``EventStore`` port.

boto3 lives here and in the other slices' ``store.py`` only; the worker's logic takes the port, so unit
tests use in-memory fakes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from consumers.worker.items import BATCH_WRITE_MAX_ITEMS, Key, item_key, unprocessed_item_keys
from core import aws
from core.batching import chunk
from core.errors import PermanentError, TransientError, error_code, is_transient
from core.retry import Backoff, Deadline

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
DEFAULT_BACKOFF = Backoff()
# BatchWriteItem calls in flight at once for one batch: the worker's batch of 100 records is four
# calls, and Lambda bills the wall time, so they overlap instead of queueing behind each other.
DEFAULT_PARALLEL_WRITES = 4


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain item (Decimal numbers, bytes for binary) as DynamoDB attribute values."""
    return {k: _serializer.serialize(v) for k, v in item.items()}


def deserialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item of the DynamoDB API (attribute values) as plain values: ``serialize_item`` reversed."""
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


@dataclass
class WriteReport:
    """What a batch of puts came to: the keys that could not be written and why, and retry counts."""

    failures: dict[Key, Exception] = field(default_factory=dict)
    unprocessed_retries: int = 0
    throttled_calls: int = 0

    def merge(self, other: WriteReport) -> None:
        self.failures.update(other.failures)
        self.unprocessed_retries += other.unprocessed_retries
        self.throttled_calls += other.throttled_calls


class EventStore(Protocol):
    def put_items(self, items: Sequence[Mapping[str, Any]], deadline: Deadline) -> WriteReport:
        """Write every item (unique keys); report the ones that failed."""
        ...


class DynamoEventStore:
    """Writes items with BatchWriteItem, 25 at a time, retrying ``UnprocessedItems`` with backoff.

    The loop is ours, not ``Table.batch_writer``'s, so that every key that still failed when the time
    budget ran out is known and can be mapped back to its SQS message. A call that fails as a whole is
    retried when the error is transient (throttling, 5xx, connection); a permanent error (validation)
    is bisected down to the one item that causes it, so a bad item cannot fail its 24 neighbours.
    Up to ``parallel`` chunks are written at once, each with its own retries inside the one deadline.
    """

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
        parallel: int = DEFAULT_PARALLEL_WRITES,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._backoff = backoff
        self._sleep = sleep
        self._parallel = parallel

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def put_items(self, items: Sequence[Mapping[str, Any]], deadline: Deadline) -> WriteReport:
        parts = [list(p) for p in chunk([serialize_item(item) for item in items], BATCH_WRITE_MAX_ITEMS)]
        run_all: Callable[..., Iterable[WriteReport]] = map
        if len(parts) > 1 and self._parallel > 1:
            self.client  # noqa: B018 - made here, once, rather than raced for by the threads
            run_all = _pool(self._parallel).map
        report = WriteReport()
        for part_report in run_all(lambda part: self._write_alone(part, deadline), parts):
            report.merge(part_report)
        return report

    def _write_alone(self, requests: list[dict[str, Any]], deadline: Deadline) -> WriteReport:
        report = WriteReport()
        self._write(requests, deadline, report)
        return report

    def _write(self, requests: list[dict[str, Any]], deadline: Deadline, report: WriteReport) -> None:
        pending = {item_key(item): item for item in requests}
        attempt = 0
        last_error: Exception = TransientError("UnprocessedItems")
        while pending:
            try:
                response = self.client.batch_write_item(
                    RequestItems={self.table_name: [{"PutRequest": {"Item": i}} for i in pending.values()]}
                )
            except (ClientError, BotoCoreError) as exc:
                if not is_transient(exc):
                    self._isolate(list(pending.values()), exc, deadline, report)
                    return
                report.throttled_calls += 1
                last_error = TransientError(error_code(exc))
            else:
                left = unprocessed_item_keys(response, self.table_name)
                pending = {k: pending[k] for k in left if k in pending}
                if not pending:
                    return
                report.unprocessed_retries += len(pending)
                last_error = TransientError("UnprocessedItems")
            attempt += 1
            delay = self._backoff.delay(attempt)
            if attempt >= self._backoff.max_attempts or deadline.remaining() <= delay:
                break
            self._sleep(delay)
        for key in pending:
            report.failures[key] = last_error

    def _isolate(
        self, requests: list[dict[str, Any]], exc: Exception, deadline: Deadline, report: WriteReport
    ) -> None:
        if len(requests) == 1:
            report.failures[item_key(requests[0])] = PermanentError(error_code(exc), str(exc)[:200])
            return
        half = len(requests) // 2
        self._write(requests[:half], deadline, report)
        self._write(requests[half:], deadline, report)


@functools.cache
def _pool(size: int) -> ThreadPoolExecutor:
    """One pool per container (per size), made on first use: threads outlive invocations."""
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="store")

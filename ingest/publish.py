"""Publishing envelopes durably to the SQS queue and the Kinesis stream, concurrently, with retries.

boto3 lives only here, in two small adapters behind the ``RecordSink`` port. Each adapter batches at
its service's limits and retries only the entries the service says failed, with full-jitter backoff,
inside the request's deadline. ``publish`` runs both sinks' batches concurrently and reports the ids
that are not on both, so the caller can answer 202 only when that set is empty.

Every AWS call is bounded by the time left, so the caller always has time to answer 503: the clients
come from ``aws.client_within`` (botocore retries off, connect/read timeouts inside the time left; our
retry loop is the only one), no attempt starts once the deadline has passed, and ``publish`` waits for
each batch only until the deadline: a batch still in flight then counts as failed (``PublishTimeout``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol

from core import aws
from core.batching import chunk_by_size, failed_kinesis_indexes, failed_sqs_ids
from core.errors import error_code, is_transient
from core.partitions import MESSAGE_ATTRIBUTE
from core.retry import Backoff, Deadline

# The error code of records whose batch was not done when the deadline came (still in flight, or no
# time left to start an attempt).
TIMEOUT_CODE = "PublishTimeout"

# Service limits: SendMessageBatch takes 10 entries and 256 KiB in all (configurable: AWS raised the
# message size to 1 MiB in 2025, emulators still enforce 256 KiB); PutRecords takes 500 records and
# 5 MiB including partition keys.
SQS_MAX_ENTRIES = 10
KINESIS_MAX_RECORDS = 500
KINESIS_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class OutRecord:
    """One serialized envelope on its way out."""

    event_id: str
    partition_key: str
    body: str
    size: int  # UTF-8 bytes of body
    tenant_id: str = ""  # the SQS message group: fair queues deliver per tenant (docs/quotas.md)
    partitions: int = 1  # the tenant's partition key values, for the worker (core/partitions.py)


def sqs_message_attributes(record: OutRecord) -> dict[str, dict[str, str]]:
    """The message attributes of a record's SQS message: its tenant's N when above 1, else none."""
    if record.partitions == 1:
        return {}
    return {MESSAGE_ATTRIBUTE: {"DataType": "Number", "StringValue": str(record.partitions)}}


def sqs_message_bytes(record: OutRecord) -> int:
    """What a record's message counts toward SQS's size limit: the body and every attribute's name,
    type and value."""
    return record.size + sum(
        len(name) + len(a["DataType"]) + len(a["StringValue"])
        for name, a in sqs_message_attributes(record).items()
    )


@dataclass
class SinkResult:
    """What one sink could not write (event id -> last error code) and how many retries it took."""

    failed: dict[str, str] = field(default_factory=dict)
    retries: int = 0

    def merge(self, other: SinkResult) -> None:
        self.failed.update(other.failed)
        self.retries += other.retries


class RecordSink(Protocol):
    """A destination that takes records in batches (the port the ingest service depends on)."""

    name: str

    def batches(self, records: Sequence[OutRecord]) -> list[list[OutRecord]]: ...

    def put_batch(self, batch: list[OutRecord], deadline: Deadline) -> SinkResult: ...


def _retry_loop(
    batch: list[OutRecord],
    deadline: Deadline,
    backoff: Backoff,
    attempt_once: Callable[[list[OutRecord]], dict[str, tuple[str, bool]]],
) -> SinkResult:
    """Send ``batch``; resend only the transiently failed entries until none are left or time is up.

    ``attempt_once`` returns event id -> (error code, retryable) for the entries that failed.
    """
    result = SinkResult()
    pending = batch
    attempt = 0
    while True:
        if deadline.remaining() <= 0:
            result.failed.update({r.event_id: TIMEOUT_CODE for r in pending})
            return result
        try:
            failures = attempt_once(pending)
        except Exception as exc:  # a whole-call failure: every entry of this attempt failed alike
            code = error_code(exc)
            failures = {r.event_id: (code, is_transient(exc)) for r in pending}
        permanent = {eid: code for eid, (code, retryable) in failures.items() if not retryable}
        result.failed.update(permanent)
        pending = [r for r in pending if r.event_id in failures and r.event_id not in permanent]
        if not pending:
            return result
        if attempt + 1 >= backoff.max_attempts or not deadline.sleep(backoff.delay(attempt)):
            result.failed.update({r.event_id: failures[r.event_id][0] for r in pending})
            return result
        attempt += 1
        result.retries += len(pending)


class SqsPublisher:
    """Sends records to one SQS queue with SendMessageBatch."""

    name = "sqs"

    def __init__(
        self,
        queue_url: str,
        client: Any = None,
        max_batch_bytes: int = 256 * 1024,
        backoff: Backoff | None = None,
    ) -> None:
        self.queue_url = queue_url
        self._client = client
        self.max_batch_bytes = max_batch_bytes
        self.backoff = backoff or Backoff()

    def client(self, deadline: Deadline) -> Any:
        """The injected client, else one whose single call fits in the time ``deadline`` has left."""
        return self._client or aws.client_within("sqs", deadline.remaining())

    def batches(self, records: Sequence[OutRecord]) -> list[list[OutRecord]]:
        return list(chunk_by_size(records, SQS_MAX_ENTRIES, self.max_batch_bytes, sqs_message_bytes))

    def put_batch(self, batch: list[OutRecord], deadline: Deadline) -> SinkResult:
        def attempt(pending: list[OutRecord]) -> dict[str, tuple[str, bool]]:
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": r.body,
                    **({"MessageGroupId": r.tenant_id} if r.tenant_id else {}),
                    **(
                        {"MessageAttributes": attributes} if (attributes := sqs_message_attributes(r)) else {}
                    ),
                }
                for i, r in enumerate(pending)
            ]
            response = self.client(deadline).send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = failed_sqs_ids(response)
            # SenderFault means the entry itself is wrong: resending it unchanged cannot help.
            return {pending[int(i)].event_id: (code, not sender) for i, (code, sender) in failed.items()}

        return _retry_loop(batch, deadline, self.backoff, attempt)


class KinesisPublisher:
    """Puts records on one Kinesis stream with PutRecords."""

    name = "kinesis"

    def __init__(self, stream_name: str, client: Any = None, backoff: Backoff | None = None) -> None:
        self.stream_name = stream_name
        self._client = client
        self.backoff = backoff or Backoff()

    def client(self, deadline: Deadline) -> Any:
        """The injected client, else one whose single call fits in the time ``deadline`` has left."""
        return self._client or aws.client_within("kinesis", deadline.remaining())

    def batches(self, records: Sequence[OutRecord]) -> list[list[OutRecord]]:
        return list(
            chunk_by_size(
                records, KINESIS_MAX_RECORDS, KINESIS_MAX_BYTES, lambda r: r.size + len(r.partition_key)
            )
        )

    def put_batch(self, batch: list[OutRecord], deadline: Deadline) -> SinkResult:
        def attempt(pending: list[OutRecord]) -> dict[str, tuple[str, bool]]:
            entries = [{"Data": r.body.encode(), "PartitionKey": r.partition_key} for r in pending]
            response = self.client(deadline).put_records(StreamName=self.stream_name, Records=entries)
            # Per-record codes are ProvisionedThroughputExceededException or InternalFailure: both retryable.
            return {pending[i].event_id: (code, True) for i, code in failed_kinesis_indexes(response)}

        return _retry_loop(batch, deadline, self.backoff, attempt)


def publish_pool() -> ThreadPoolExecutor:
    """A pool for ``publish``: SQS batches of 10 are many small calls, worth overlapping.

    One per container: the service holds its own. A module-level pool would be one per process, and the
    local runtime runs every ingest container in one process: one tenant's 25-batch request would then
    queue the other containers' publishes behind it, which separate Lambda environments never do.
    """
    return ThreadPoolExecutor(max_workers=16, thread_name_prefix="publish")


@dataclass
class PublishReport:
    """Per sink results; ``missing`` are the ids that are not durably on every sink."""

    results: dict[str, SinkResult]

    @property
    def missing(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for result in self.results.values():
            out.update(result.failed)
        return out

    @property
    def retries(self) -> int:
        return sum(r.retries for r in self.results.values())


def publish(
    records: Sequence[OutRecord],
    sinks: Sequence[RecordSink],
    budget_seconds: float,
    pool: ThreadPoolExecutor,
) -> PublishReport:
    """Write ``records`` to every sink concurrently; return by ``budget_seconds`` whatever happens.

    A batch not done by then is reported failed with ``TIMEOUT_CODE`` (its thread may still finish the
    call: the records may then be on the sink, which a client retry with the same ids makes harmless).
    ``pool``: the container's own (``publish_pool``).
    """
    deadline = Deadline(budget_seconds)
    futures: list[tuple[str, list[OutRecord], Future[SinkResult]]] = []
    for sink in sinks:
        for batch in sink.batches(records):
            futures.append((sink.name, batch, pool.submit(sink.put_batch, batch, deadline)))
    results = {sink.name: SinkResult() for sink in sinks}
    for name, batch, future in futures:
        try:
            results[name].merge(future.result(timeout=deadline.remaining()))
        except FutureTimeout:
            future.cancel()
            results[name].failed.update({r.event_id: TIMEOUT_CODE for r in batch})
    return PublishReport(results)

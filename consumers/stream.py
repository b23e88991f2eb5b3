"""A small base for Kinesis stream consumers: decoding records, ordered batches, de-duplication.

Checkpoint semantics (Lambda's Kinesis event source mapping with ``ReportBatchItemFailures``): Lambda
takes the LOWEST sequence number in ``batchItemFailures`` as the checkpoint and redelivers every record
after it, successful or not. So a consumer must (1) never skip past a failed record, and (2) expect the
records after a failure again. ``StagedBatchProcessor(ordered=True)`` does both: after the first failure
it commits nothing later and reports every later record, so later records are not lost, and are applied
once (on the redelivery) rather than twice.

Records that are not valid envelopes are skipped and counted, not failed: a retry cannot fix them, and
on a stream a failing record blocks its shard until it expires. The same record is on the SQS queue,
whose DLQ keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import orjson
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from consumers.processing import Commit, StagedBatchProcessor
from core.envelope import Envelope, InvalidEnvelope, validate

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

T = TypeVar("T")


@dataclass(frozen=True)
class StreamRecord:
    """One Kinesis record, decoded: the envelope, or ``invalid`` (a code) when it is not one."""

    shard_id: str
    sequence_number: str
    data: bytes
    envelope: Envelope | None
    invalid: str | None = None

    @property
    def sequence(self) -> int:
        """Sequence numbers are decimal strings of up to 128 bits: compare them as integers."""
        return int(self.sequence_number)


def shard_id_of(record: KinesisStreamRecord) -> str:
    """``shardId-000000000000`` from the record's ``eventID`` (``<shard id>:<sequence number>``)."""
    return record.event_id.partition(":")[0]


def decode(record: KinesisStreamRecord) -> StreamRecord:
    """Decode and validate one record's envelope; never raises for bad data (see the module docstring)."""
    data = record.kinesis.data_as_bytes()
    shard, seq = shard_id_of(record), record.kinesis.sequence_number
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return StreamRecord(shard, seq, data, None, "not_json")
    try:
        validate(doc)
    except InvalidEnvelope:
        return StreamRecord(shard, seq, data, None, "invalid_envelope")
    return StreamRecord(shard, seq, data, doc)


def decode_or_skip(
    record: KinesisStreamRecord, logger: Logger, metrics: Metrics
) -> tuple[StreamRecord, Envelope] | None:
    """``decode``, with the skip policy of the module docstring applied: a record that is not a valid
    envelope is counted (``Skipped_<code>``), logged and answered with None, never failed."""
    decoded = decode(record)
    if decoded.envelope is None:
        metrics.add_metric(name=f"Skipped_{decoded.invalid}", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=1)  # the total alarms watch
        logger.error(
            "not a valid envelope; skipped",
            extra={"sequence_number": decoded.sequence_number, "code": decoded.invalid},
        )
        return None
    return decoded, decoded.envelope


def duplicate_positions(entries: Iterable[tuple[int, str, str]]) -> set[int]:
    """Batch positions whose (tenant, event_id) already appeared earlier in the batch.

    ``entries`` are (position, tenant_id, event_id). A producer retry (the ingest API answered 503 and
    the client sent again) puts the same event_id on the stream twice; a consumer whose effect is not
    idempotent applies only the first.
    """
    seen: set[tuple[str, str]] = set()
    dupes: set[int] = set()
    for index, tenant, event_id in entries:
        if (tenant, event_id) in seen:
            dupes.add(index)
        seen.add((tenant, event_id))
    return dupes


def stream_processor(
    commit: Commit[KinesisStreamRecord, T],
) -> StagedBatchProcessor[KinesisStreamRecord, T]:
    """A Kinesis batch processor that prepares per record, commits per batch, and stops at a failure."""
    return StagedBatchProcessor(EventType.KinesisDataStreams, commit, ordered=True)

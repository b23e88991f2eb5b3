"""Kinesis consumer: counts and bytes per (tenant, kind, minute) in the rollup table, exact under redelivery.

The checkpoint-in-the-transaction design, its atomicity and why it needs ``parallelization_factor = 1``
are in ``consumers.rollup.counters``; checkpoint semantics of the stream in ``consumers.stream``.
"""

from __future__ import annotations

import functools
import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from consumers.entry import batch_entry
from consumers.processing import Staged
from consumers.rollup.counters import PreparedCount, RollupStore, apply_rollup, bucket_of
from consumers.rollup.store import DynamoRollupStore
from consumers.stream import decode_or_skip, duplicate_positions, shard_id_of, stream_processor
from core.observability import log_json
from core.settings import RollupSettings

logger = Logger(json_serializer=log_json)
metrics = Metrics()


@functools.cache
def settings() -> RollupSettings:
    return RollupSettings.from_env()


@functools.cache
def rollup_store() -> RollupStore:
    return DynamoRollupStore(settings().rollup_table_name)


def record_handler(record: KinesisStreamRecord) -> PreparedCount | None:
    got = decode_or_skip(record, logger, metrics)
    if got is None:
        return None
    decoded, env = got
    return PreparedCount(
        decoded.sequence_number, env["event_id"], env["tenant_id"], bucket_of(env), len(decoded.data)
    )


def shard_key(record: KinesisStreamRecord) -> str:
    """The checkpoint's name: one per (stream, shard), so a new stream or a child shard starts fresh."""
    return f"rollup#{record.event_source_arn}#{shard_id_of(record)}"


def commit(
    staged: list[Staged[KinesisStreamRecord, PreparedCount | None]], context: LambdaContext | None
) -> dict[int, BaseException]:
    kept = [(s.index, s.value) for s in staged if s.value is not None]
    if not kept:
        return {}
    dupes = duplicate_positions((index, c.tenant_id, c.event_id) for index, c in kept)
    records = [c.at(index, counted=index not in dupes) for index, c in kept]
    outcome = apply_rollup(
        records,
        shard_key(staged[0].record),
        rollup_store(),
        seen_window=settings().rollup_dedup_window_seconds,
        now=int(time.time()),
    )
    metrics.add_metric(name="RecordsCounted", unit=MetricUnit.Count, value=outcome.applied)
    if outcome.skipped:
        metrics.add_metric(name="AlreadyApplied", unit=MetricUnit.Count, value=outcome.skipped)
    if outcome.replays:
        metrics.add_metric(name="ReplaysNotCounted", unit=MetricUnit.Count, value=outcome.replays)
    if outcome.failed:
        metrics.add_metric(name="RollupFailures", unit=MetricUnit.Count, value=len(outcome.failed))
        logger.warning("rollup transaction failed; the shard is retried from the first failed record")
    return outcome.failed


processor = stream_processor(commit)


lambda_handler = batch_entry(processor, record_handler, logger, metrics)

"""Kinesis consumer: archive each batch to S3 as redacted gzip NDJSON, one object per (tenant, hour).

The layout, the deterministic keys and why a retried or partially redelivered batch overwrites rather
than duplicates are in ``consumers.archiver.archive``; checkpoint semantics in ``consumers.stream``.
"""

from __future__ import annotations

import functools
from collections import Counter

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from consumers.archiver.archive import ArchiveWriter, PreparedLine, archive_batch, archive_line, group_of
from consumers.archiver.store import S3Archive
from consumers.entry import batch_entry
from consumers.processing import Staged
from consumers.stream import decode_or_skip, duplicate_positions, shard_id_of, stream_processor
from core import redaction
from core.observability import log_json
from core.settings import ArchiverSettings

logger = Logger(json_serializer=log_json)
metrics = Metrics()


@functools.cache
def settings() -> ArchiverSettings:
    return ArchiverSettings.from_env()


@functools.cache
def archive() -> ArchiveWriter:
    return S3Archive(settings().archive_bucket)


def record_handler(record: KinesisStreamRecord) -> PreparedLine | None:
    got = decode_or_skip(record, logger, metrics)
    if got is None:
        return None
    decoded, env = got
    s = settings()
    line, counts = archive_line(
        env, redaction.load(s.redaction_rules_path, s.redact_ip_addresses), decoded.data.decode()
    )
    return PreparedLine(decoded.sequence_number, env["event_id"], group_of(env), line, counts)


def commit(
    staged: list[Staged[KinesisStreamRecord, PreparedLine | None]], context: LambdaContext | None
) -> dict[int, BaseException]:
    kept = [(s.index, s.value) for s in staged if s.value is not None]
    if not kept:
        return {}
    dupes = duplicate_positions((index, v.tenant_id, v.event_id) for index, v in kept)
    lines = [v.at(index) for index, v in kept if index not in dupes]
    failed = archive_batch(lines, shard_id_of(staged[0].record), archive())
    redactions: Counter[str] = Counter()
    for index, v in kept:
        if index not in failed:
            redactions.update(v.redactions)
    metrics.add_metric(name="RecordsArchived", unit=MetricUnit.Count, value=len(lines) - len(failed))
    if dupes:
        metrics.add_metric(name="DuplicatesDropped", unit=MetricUnit.Count, value=len(dupes))
    if failed:
        metrics.add_metric(name="ArchiveFailures", unit=MetricUnit.Count, value=len(failed))
        logger.warning("archive write failed; the shard is retried from the first failed record")
    for rule, n in redactions.items():
        metrics.add_metric(name=f"Redactions_{rule}", unit=MetricUnit.Count, value=n)
    return failed


processor = stream_processor(commit)


lambda_handler = batch_entry(processor, record_handler, logger, metrics)

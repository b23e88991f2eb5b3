"""Replaying archived records back onto a Kinesis stream: ``python -m local replay``.

The archiver keeps every record as a line of ``tenant=<id>/dt=<yyyy-mm-dd>/hour=<hh>/*.ndjson.gz`` in
ARCHIVE_BUCKET. Replay reads the objects of one tenant for a range of hours, in key order, and puts the
lines on a stream with PutRecords (through the ingest's own ``KinesisPublisher``: batches at the
service limits, retries of the entries Kinesis failed), at a bounded rate.

What consumers see: the archived envelopes are the **redacted** copies (the archive never holds an
unredacted secret), so a replayed record is the redacted envelope, same ``event_id``, same
``received_at``. Its ``event_id`` is what makes replay idempotent *in effect* for consumers that de-dup
or upsert by ``(tenant_id, event_id)``. Consumers that count or append (the rollup, the archiver itself)
see the records again: replaying into the pipeline's own stream double-counts the rollup and writes a
second archive copy. Replay into a separate stream (``--stream``) for a consumer that needs a backfill,
or accept the duplicates knowingly. See docs/reliability.md.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from core.retry import Deadline
from ingest.publish import KinesisPublisher, OutRecord

HOUR_FORMATS = ("%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def parse_hour(text: str) -> datetime:
    """``2026-11-22T10`` (or a fuller timestamp, or a date) -> that hour, UTC."""
    value = text.strip().removesuffix("Z")
    for fmt in HOUR_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC, minute=0, second=0, microsecond=0)
        except ValueError:
            continue
    raise ValueError(f"not an hour: {text!r} (use YYYY-MM-DDTHH, e.g. 2026-11-22T10)")


def hour_prefixes(tenant: str, start: datetime, end: datetime) -> Iterator[str]:
    """The archive prefixes of every hour from ``start`` to ``end``, both included."""
    if end < start:
        raise ValueError("--to is before --from")
    hour = start
    while hour <= end:
        yield f"tenant={tenant}/dt={hour:%Y-%m-%d}/hour={hour:%H}/"
        hour += timedelta(hours=1)


@dataclass
class ReplayReport:
    objects: int = 0
    records: int = 0
    put: int = 0
    duplicates_skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    event_ids: list[str] = field(default_factory=list)


def archived_lines(s3: Any, bucket: str, prefixes: Iterator[str], report: ReplayReport) -> Iterator[bytes]:
    """Every archived line under ``prefixes``, objects in key order, lines in file order."""
    for prefix in prefixes:
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        for key in sorted(keys):
            report.objects += 1
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            yield from (line for line in gzip.decompress(body).splitlines() if line.strip())


def replay(s3: Any, kinesis: Any, bucket: str, stream: str, tenant: str, start: datetime, end: datetime, *,
           dry_run: bool = True, rate_per_second: float = 500.0, partition_by: str = "event_id",
           batch_size: int = 500) -> ReplayReport:  # fmt: skip
    """Put the archived records of ``tenant`` from hour ``start`` to ``end`` on ``stream``.

    Dry run (the default) only counts. A record whose ``event_id`` already appeared in this run is put
    once. At most ``rate_per_second`` records per second; entries Kinesis still fails after the
    publisher's retries are reported in ``failed`` (event id -> error code) and the run goes on.
    """
    report = ReplayReport()
    seen: set[str] = set()
    publisher = KinesisPublisher(stream, client=kinesis)
    pending: list[OutRecord] = []
    started = time.monotonic()

    def flush() -> None:
        if not dry_run and pending:
            result = publisher.put_batch(list(pending), Deadline(30))
            report.failed.update(result.failed)
            report.put += len(pending) - len(result.failed)
            if rate_per_second > 0:  # keep the average rate at or below the limit
                ahead = report.records / rate_per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        pending.clear()

    for line in archived_lines(s3, bucket, hour_prefixes(tenant, start, end), report):
        envelope = orjson.loads(line)
        event_id = envelope["event_id"]
        if event_id in seen:
            report.duplicates_skipped += 1
            continue
        seen.add(event_id)
        report.records += 1
        report.event_ids.append(event_id)
        key = envelope["tenant_id"] if partition_by == "tenant_id" else event_id
        text = line.decode()
        pending.append(OutRecord(event_id, key, text, len(line)))
        if len(pending) >= min(batch_size, max(1, int(rate_per_second) or batch_size)):
            flush()
    flush()
    return report

"""The SQS worker: redact each envelope, store it in DynamoDB in batches of 25, report partial failures.

Powertools batch processing with a commit phase (``consumers.processing``): the record handler prepares
an item per message (``consumers.worker.items``); the commit writes them all with BatchWriteItem
(``consumers.worker.store``) and reports the messages whose write still failed after retries inside the
time budget. Only those, and the messages that could not be prepared, appear in ``batchItemFailures``;
SQS deletes the rest.

Permanent failures (not JSON, not a valid envelope, an item too large even gzipped) are reported as
failures too, every time: SQS then moves the message to the DLQ after ``max_receive_count`` receives
(core/wiring.json). That keeps one DLQ path, owned by the queue's redrive policy, with no extra
permission or setting, at the cost of a few cheap redeliveries of a poison message. Each one is counted
(``PermanentFailures_<code>``) and logged with its message id and reason, never its body.

``SIMULATED_COST_MS_PER_KCHAR`` adds a fixed amount of work time per record so load tests can study worker concurrency.
"""

from __future__ import annotations

import functools
import time
from collections import Counter

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from consumers.entry import batch_entry
from consumers.processing import Staged, StagedBatchProcessor
from consumers.worker.items import PreparedItem, failures_by_record_id, plan_writes, prepare_record
from consumers.worker.store import DynamoEventStore, EventStore
from core import redaction
from core.envelope import now_received_at
from core.errors import PermanentError
from core.observability import log_json
from core.partitions import MESSAGE_ATTRIBUTE
from core.retry import Deadline
from core.settings import WorkerSettings

# Leave this much of the invocation for building the response and flushing metrics.
RESPONSE_RESERVE_SECONDS = 2.0

logger = Logger(json_serializer=log_json)
metrics = Metrics()


@functools.cache
def settings() -> WorkerSettings:
    return WorkerSettings.from_env()


@functools.cache
def event_store() -> EventStore:
    return DynamoEventStore(settings().table_name)


def redactor() -> redaction.Redactor:
    s = settings()
    return redaction.load(s.redaction_rules_path, s.redact_ip_addresses)


def simulate_cost(chars: int, ms_per_kchar: float) -> None:
    """Spend ``ms_per_kchar`` ms per 1000 characters of work (load tests only; 0 is off).

    It sleeps rather than spins: on AWS each concurrent invocation has its own vCPU, so per-record
    work in N environments takes the time of one. Locally the environments are threads of one
    process, where a busy loop would serialize on the GIL and hide what concurrency buys.
    """
    if ms_per_kchar > 0:
        time.sleep(chars / 1000 * ms_per_kchar / 1000)


def message_partitions(record: SQSRecord) -> str | None:
    """The ``partitions`` attribute ingest stamped on the message (its tenant's N), None when absent."""
    attribute = (record.raw_event.get("messageAttributes") or {}).get(MESSAGE_ATTRIBUTE)
    return None if attribute is None else str(attribute.get("stringValue") or "")


def record_handler(record: SQSRecord) -> PreparedItem:
    s = settings()
    body = record.body
    simulate_cost(len(body), s.simulated_cost_ms_per_kchar)
    try:
        return prepare_record(
            body,
            redactor(),
            retention_days=s.retention_days,
            stored_at=now_received_at(),
            compact=s.store_compact,
            partitions=message_partitions(record),
        )
    except PermanentError as exc:
        from core import wiring  # only this failure path reads the wiring: keep it off the cold start

        receives = int(record.attributes.approximate_receive_count or 1)
        metrics.add_metric(name=f"PermanentFailures_{exc.code}", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="PermanentFailures", unit=MetricUnit.Count, value=1)
        logger.error(
            "record cannot be stored; reported as failed until the queue moves it to the DLQ",
            extra={
                "message_id": record.message_id,
                "code": exc.code,
                "reason": str(exc),
                "body_chars": len(body),
                "receive_count": receives,
                "to_dlq_next": receives >= wiring.load().worker.max_receive_count,
            },
        )
        raise


def store_budget(context: LambdaContext | None) -> Deadline:
    """The retry budget: STORE_BUDGET_SECONDS, cut to what the invocation has left minus a reserve."""
    budget = settings().store_budget_seconds
    if context is not None:
        left = context.get_remaining_time_in_millis() / 1000 - RESPONSE_RESERVE_SECONDS
        budget = max(0.0, min(budget, left))
    return Deadline(budget)


def commit(
    staged: list[Staged[SQSRecord, PreparedItem]], context: LambdaContext | None
) -> dict[int, BaseException]:
    """Write the prepared items; the batch positions whose write failed, with the reason."""
    if not staged:
        return {}
    units = plan_writes((s.record.message_id, s.value) for s in staged)
    report = event_store().put_items([u.item for u in units], store_budget(context))
    index_of = {s.record.message_id: s.index for s in staged}
    failed: dict[int, BaseException] = {
        index_of[record_id]: exc for record_id, exc in failures_by_record_id(units, report.failures).items()
    }
    _count(staged, failed, report.unprocessed_retries, report.throttled_calls)
    return failed


def _count(
    staged: list[Staged[SQSRecord, PreparedItem]],
    failed: dict[int, BaseException],
    retries: int,
    throttled: int,
) -> None:
    redactions: Counter[str] = Counter()
    for s in staged:
        if s.index not in failed:
            redactions.update(s.value.redactions)
    metrics.add_metric(name="RecordsStored", unit=MetricUnit.Count, value=len(staged) - len(failed))
    permanent = Counter(e.code for e in failed.values() if isinstance(e, PermanentError))
    for code, n in permanent.items():
        metrics.add_metric(name=f"PermanentFailures_{code}", unit=MetricUnit.Count, value=n)
    if permanent:
        # The total an alarm can watch: CloudWatch alarms cannot SEARCH over the per-code names.
        metrics.add_metric(name="PermanentFailures", unit=MetricUnit.Count, value=sum(permanent.values()))
    transient = len(failed) - sum(permanent.values())
    if transient:
        metrics.add_metric(name="TransientFailures", unit=MetricUnit.Count, value=transient)
        logger.warning(
            "writes failed after retries; records go back to the queue", extra={"count": transient}
        )
    if retries:
        metrics.add_metric(name="UnprocessedRetries", unit=MetricUnit.Count, value=retries)
    if throttled:
        metrics.add_metric(name="ThrottledCalls", unit=MetricUnit.Count, value=throttled)
    for rule, n in redactions.items():
        metrics.add_metric(name=f"Redactions_{rule}", unit=MetricUnit.Count, value=n)


processor: StagedBatchProcessor[SQSRecord, PreparedItem] = StagedBatchProcessor(EventType.SQS, commit)


lambda_handler = batch_entry(processor, record_handler, logger, metrics)

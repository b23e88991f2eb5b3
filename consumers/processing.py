"""A Powertools ``BatchProcessor`` that prepares records one by one, then commits them as one batch.

Powertools calls the record handler once per record and counts a record as done when the handler
returns. A consumer that writes per record (``put_item`` in the handler) would fit that model, but the
worker must write 25 items per BatchWriteItem call and the stream consumers write one object or one
transaction per group of records. So the processing is split in two phases:

1. **prepare**: the usual Powertools record handler parses, validates and transforms a record and
   returns the result (it raises for a record that cannot be prepared, exactly as in any Powertools
   handler, and Powertools records the failure);
2. **commit**: after every record is prepared, ``commit(staged, context)`` writes the results in bulk
   and returns the batch positions whose effect could not be applied, with the exception for each.

Those records are then moved from the processor's successes to its failures, through Powertools' own
``failure_handler``, so ``process_partial_response`` builds ``batchItemFailures`` the usual way
(message ids for SQS, sequence numbers for Kinesis). Subclassing beats rebuilding the response by hand:
the handler stays the documented three lines, and Powertools' response format, model support and
logging keep working.

``ordered=True`` is for streams: Lambda checkpoints a Kinesis shard at the lowest reported sequence
number and redelivers every record after it. Later records that were applied anyway would be applied
twice, so after the first failure nothing later is committed and every later record is reported too.

The entire-batch case is deliberate: ``raise_on_entire_batch_failure=False``. When every record
fails, the response lists every record (SQS redelivers each after its visibility timeout and moves it
to the DLQ after ``maxReceiveCount``; Kinesis retries from the first record), instead of raising
``BatchProcessingError``, which would turn a handled outcome into a function error, a Lambda error
metric and, on Kinesis, a bisected retry that changes the batch boundaries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.errors import TransientError

logger = logging.getLogger(__name__)

R = TypeVar("R")  # the Powertools record class: SQSRecord, KinesisStreamRecord
T = TypeVar("T")  # what the record handler returns for one record


@dataclass(frozen=True)
class Staged(Generic[R, T]):
    """A prepared record: its position in the batch, the Powertools record, the handler's result."""

    index: int
    record: R
    value: T


class HeldBack(TransientError):
    """Not applied because an earlier record of an ordered batch failed; redelivered from the checkpoint."""


Commit = Callable[[list[Staged[R, T]], LambdaContext | None], Mapping[int, BaseException]]


class StagedBatchProcessor(BatchProcessor, Generic[R, T]):
    """``BatchProcessor`` with a commit phase after the per-record handler (see the module docstring)."""

    def __init__(self, event_type: EventType, commit: Commit[R, T], *, ordered: bool = False) -> None:
        super().__init__(event_type=event_type, raise_on_entire_batch_failure=False)
        self.commit = commit
        self.ordered = ordered

    def process(self) -> list[tuple[Any, ...]]:
        results = super().process()
        context: LambdaContext | None = getattr(self, "lambda_context", None)
        failed: dict[int, BaseException] = {}
        exceptions = iter(self.exceptions)
        phase_one: dict[int, Any] = {}
        for index, result in enumerate(results):
            if result[0] == "fail":
                phase_one[index] = next(exceptions)
        first_failure = min(phase_one, default=len(results))
        staged: list[Staged[R, T]] = [
            Staged(index, cast(R, self._to_batch_type(self.records[index], self.event_type)), res[1])
            for index, res in enumerate(results)
            if res[0] == "success" and (not self.ordered or index < first_failure)
        ]
        try:
            failed.update(self.commit(staged, context))
        except Exception as exc:  # a bug in commit must not lose the batch: every staged record is retried
            logger.exception("commit failed; reporting every prepared record as failed")
            failed.update({s.index: exc for s in staged})
        if self.ordered:
            cut = min([*failed, first_failure])
            for index in range(cut + 1, len(results)):
                if index not in phase_one and index not in failed:
                    failed[index] = HeldBack(f"held back after the failure of record {cut}")
        return self._rebuild(results, phase_one, failed)

    def _rebuild(
        self,
        results: list[tuple[Any, ...]],
        phase_one: dict[int, Any],
        failed: Mapping[int, BaseException],
    ) -> list[tuple[Any, ...]]:
        """Successes and failures in batch order, the commit's failures registered like handler ones."""
        self.success_messages.clear()
        self.fail_messages.clear()
        self.exceptions.clear()
        rebuilt: list[tuple[Any, ...]] = []
        for index, result in enumerate(results):
            if index in phase_one:
                self.fail_messages.append(result[2])
                self.exceptions.append(phase_one[index])
                rebuilt.append(result)
            elif index in failed:
                exc = failed[index]
                record = self._to_batch_type(record=self.records[index], event_type=self.event_type)
                rebuilt.append(self.failure_handler(record, (type(exc), exc, exc.__traceback__)))
            else:
                self.success_messages.append(result[2])
                rebuilt.append(result)
        return rebuilt

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

Those records are then registered as failures through Powertools' own ``failure_handler``, the others
through its ``success_handler``, so ``process_partial_response`` builds ``batchItemFailures`` the usual
way (message ids for SQS, sequence numbers for Kinesis). The processor extends ``BatchProcessor`` only
through the hooks Powertools documents for that ("Extending the processor", "Create your own partial
processor"): ``_prepare`` resets the staging area, ``success_handler`` and ``failure_handler`` stage
each record's outcome during Powertools' own ``process()`` loop, and ``_clean`` (run when the batch
leaves the ``with processor(...)`` block, before Powertools builds the response) runs the commit and
registers every outcome in batch order. It reads nothing positional from Powertools' result tuples.
Subclassing beats rebuilding the response by hand: the handler stays the documented three lines, and
Powertools' response format, model support and logging keep working.

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
from aws_lambda_powertools.utilities.batch.base import FailureResponse, SuccessResponse
from aws_lambda_powertools.utilities.batch.exceptions import ExceptionInfo
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


@dataclass(frozen=True)
class _Prepared:
    """Phase one succeeded: the record as Powertools handed it to ``success_handler``, and the result."""

    record: Any
    value: Any


@dataclass(frozen=True)
class _NotPrepared:
    """Phase one failed: the record as Powertools handed it to ``failure_handler``, and why."""

    record: Any
    exception: ExceptionInfo


class StagedBatchProcessor(BatchProcessor, Generic[R, T]):
    """``BatchProcessor`` with a commit phase after the per-record handler (see the module docstring)."""

    def __init__(self, event_type: EventType, commit: Commit[R, T], *, ordered: bool = False) -> None:
        super().__init__(event_type=event_type, raise_on_entire_batch_failure=False)
        self.commit = commit
        self.ordered = ordered
        self._outcomes: list[_Prepared | _NotPrepared] = []

    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]
        self._outcomes = []

    def success_handler(self, record: Any, result: Any) -> SuccessResponse:
        """Phase one: stage the result for the commit; the success is registered in ``_clean``."""
        self._outcomes.append(_Prepared(record, result))
        return "success", result, record

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        """Phase one: note the failure; it is registered in ``_clean``, in batch order with the rest."""
        self._outcomes.append(_NotPrepared(record, exception))
        return "fail", f"{exception[0]}:{exception[1]}", record

    def _clean(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if len(outcomes) == len(self.records):  # not when process() was interrupted part way
            self._register(outcomes, self._commit(outcomes))
        super()._clean()  # type: ignore[no-untyped-call]

    def _commit(self, outcomes: list[_Prepared | _NotPrepared]) -> dict[int, BaseException]:
        """Run the commit over the staged records; every batch position to report, with the reason."""
        context: LambdaContext | None = getattr(self, "lambda_context", None)
        first_failure = next(
            (i for i, o in enumerate(outcomes) if isinstance(o, _NotPrepared)), len(outcomes)
        )
        staged: list[Staged[R, T]] = [
            Staged(index, cast(R, self._to_batch_type(o.record, self.event_type)), o.value)
            for index, o in enumerate(outcomes)
            if isinstance(o, _Prepared) and (not self.ordered or index < first_failure)
        ]
        failed: dict[int, BaseException] = {}
        try:
            failed.update(self.commit(staged, context))
        except Exception as exc:  # a bug in commit must not lose the batch: every staged record is retried
            logger.exception("commit failed; reporting every prepared record as failed")
            failed.update({s.index: exc for s in staged})
        if self.ordered:
            cut = min([*failed, first_failure])
            for index in range(cut + 1, len(outcomes)):
                if isinstance(outcomes[index], _Prepared) and index not in failed:
                    failed[index] = HeldBack(f"held back after the failure of record {cut}")
        return failed

    def _register(
        self, outcomes: list[_Prepared | _NotPrepared], failed: Mapping[int, BaseException]
    ) -> None:
        """Hand every outcome to Powertools' own handlers, in batch order."""
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, _NotPrepared):
                super().failure_handler(outcome.record, outcome.exception)
            elif index in failed:
                exc = failed[index]
                record = self._to_batch_type(outcome.record, self.event_type)
                super().failure_handler(record, (type(exc), exc, exc.__traceback__))
            else:
                super().success_handler(outcome.record, outcome.value)

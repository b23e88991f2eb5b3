"""Per-tenant rollups: record counts and bytes per (tenant, kind, minute), exact under redelivery.

How it stays exact: the rollup table holds, per shard, a checkpoint item with the highest sequence
number already applied. Each batch reads it (consistent read), skips the records at or below it, and
applies the counter ADDs together with the new checkpoint in ONE TransactWriteItems whose condition is
that the checkpoint is still the value read. A redelivered record is at or below the checkpoint, so it
is skipped; a transaction that fails changes nothing, so its records are counted on the redelivery.

A transaction holds at most 100 items: the checkpoint plus 99 counters. A batch that touches more
(tenant, bucket) pairs is split, in sequence order, into consecutive runs of records, each run one
transaction that moves the checkpoint to its last record. Each run is atomic, the batch is not: when
run k fails, runs before it are applied and their checkpoint is stored, and the records of run k and
after are reported failed, so Lambda redelivers exactly what was not applied.

This needs ``parallelization_factor = 1`` (core/wiring.json): with more, Lambda processes several
batches of one shard at once (split by partition key), their sequence numbers interleave, and a
per-shard checkpoint would skip records of a concurrent batch below it.

Duplicates of an event_id inside one batch (a producer retry) are counted once; duplicates in different
batches are counted twice: the checkpoint de-duplicates deliveries, not producer retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from consumers.processing import HeldBack
from core.envelope import Envelope

MAX_TRANSACTION_ITEMS = 100


class RollupStore(Protocol):
    def read_checkpoint(self, shard_key: str) -> str | None: ...

    def apply(
        self, shard_key: str, deltas: dict[tuple[str, str], tuple[int, int]], old: str | None, new: str
    ) -> None: ...


@dataclass(frozen=True)
class Countable:
    """One record's contribution: its position, sequence number, counter key and size in bytes.

    ``counted`` is False for a record that only moves the checkpoint (a duplicate event_id).
    """

    index: int
    sequence_number: str
    tenant_id: str
    bucket: str
    size: int
    counted: bool = True

    @property
    def sequence(self) -> int:
        return int(self.sequence_number)


@dataclass(frozen=True)
class PreparedCount:
    """The record handler's result for one record: what it adds to which counter."""

    sequence_number: str
    event_id: str
    tenant_id: str
    bucket: str
    size: int

    def at(self, index: int, *, counted: bool) -> Countable:
        """The record at its position in the batch; ``counted=False`` for a duplicate event_id."""
        return Countable(index, self.sequence_number, self.tenant_id, self.bucket, self.size, counted)


@dataclass
class RollupOutcome:
    failed: dict[int, BaseException] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0
    transactions: int = 0


def bucket_of(env: Envelope) -> str:
    """``2026-11-22T10:15#event``: the minute of ``received_at`` and the kind."""
    return f"{env['received_at'][:16]}#{env['kind']}"


def plan_runs(records: Sequence[Countable], max_counters: int) -> list[list[Countable]]:
    """Consecutive runs of records, each touching at most ``max_counters`` distinct counters."""
    runs: list[list[Countable]] = []
    run: list[Countable] = []
    keys: set[tuple[str, str]] = set()
    for record in records:
        key = (record.tenant_id, record.bucket)
        if record.counted and key not in keys and len(keys) == max_counters:
            runs.append(run)
            run, keys = [], set()
        run.append(record)
        if record.counted:
            keys.add(key)
    if run:
        runs.append(run)
    return runs


def aggregate(run: Sequence[Countable]) -> dict[tuple[str, str], tuple[int, int]]:
    """(tenant, bucket) -> (records, bytes) for the counted records of a run."""
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for record in run:
        if record.counted:
            count, size = totals.get((record.tenant_id, record.bucket), (0, 0))
            totals[(record.tenant_id, record.bucket)] = (count + 1, size + record.size)
    return totals


def apply_rollup(
    records: Sequence[Countable],
    shard_key: str,
    store: RollupStore,
    max_items: int | None = None,
) -> RollupOutcome:
    """Apply a batch's records (in sequence order) once; the positions to report when a write failed."""
    outcome = RollupOutcome()
    if not records:
        return outcome
    try:
        checkpoint = store.read_checkpoint(shard_key)
    except Exception as exc:
        outcome.failed = {r.index: exc for r in records}
        return outcome
    high = -1 if checkpoint is None else int(checkpoint)
    fresh = [r for r in records if r.sequence > high]
    outcome.skipped = len(records) - len(fresh)
    for run in plan_runs(fresh, (max_items or MAX_TRANSACTION_ITEMS) - 1):  # one slot: the checkpoint
        try:
            store.apply(shard_key, aggregate(run), checkpoint, run[-1].sequence_number)
        except Exception as exc:
            start = run[0].index
            outcome.failed = {
                r.index: exc if r.index == start else HeldBack(f"after the failed record {start}")
                for r in fresh
                if r.index >= start
            }
            return outcome
        checkpoint = run[-1].sequence_number
        outcome.applied += sum(r.counted for r in run)
        outcome.transactions += 1
    return outcome

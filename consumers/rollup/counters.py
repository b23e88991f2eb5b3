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

Shards run concurrently: two shards' transactions on the same counter can conflict
(``TransactionConflict``); the store retries those inside the function (``consumers.rollup.store``).

This needs ``parallelization_factor = 1`` (core/wiring.json): with more, Lambda processes several
batches of one shard at once (split by partition key), their sequence numbers interleave, and a
per-shard checkpoint would skip records of a concurrent batch below it.

Duplicates of an event_id inside one batch (a producer retry) are counted once. Across batches, a record
whose id is derived from a client identity (a UUIDv5: a webhook delivery, an ``event_id``, an
``Idempotency-Key``) is counted once within the seen window: the same transaction that adds its count
puts a seen marker for (tenant, event_id) with a TTL, on the condition that none is there, and each batch
reads the markers of its derived ids first (consistent reads) and does not count those it finds. A
replayed webhook, or a client's retry after a ``503``, is therefore counted once however many times it
reaches the stream, as long as it comes back within the window. Two replays racing on different shards
both pass the read, but only one transaction can put the marker: the other fails, is redelivered, and
then finds it. Server-assigned ids (UUIDv7) are unique per request and cannot be replayed, so they pay
for no marker (a marker doubles the write cost of a record in a transaction).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from consumers.processing import HeldBack
from core.envelope import Envelope

MAX_TRANSACTION_ITEMS = 100

SeenKey = tuple[str, str]  # (tenant_id, event_id)


class RollupStore(Protocol):
    def read_checkpoint(self, shard_key: str) -> str | None: ...

    def read_seen(self, keys: Collection[SeenKey], now: int) -> set[SeenKey]:
        """The keys whose seen marker exists and has not expired at ``now`` (unix seconds)."""
        ...

    def apply(
        self,
        shard_key: str,
        deltas: dict[tuple[str, str], tuple[int, int]],
        old: str | None,
        new: str,
        seen: Sequence[SeenKey] = (),
        now: int = 0,
        expires_at: int = 0,
    ) -> None:
        """Add the deltas, put a marker per ``seen`` key (none may be live) and move the checkpoint, at once."""
        ...


def is_derived_id(event_id: str) -> bool:
    """True for an id derived from a client identity (UUIDv5), the only kind a replay can repeat."""
    return len(event_id) == 36 and event_id[14] == "5"


@dataclass(frozen=True)
class Countable:
    """One record's contribution: its position, sequence number, counter key and size in bytes.

    ``counted`` is False for a record that only moves the checkpoint (a duplicate event_id).
    ``event_id`` is set for a record that enters the seen-set (a derived id), empty otherwise.
    """

    index: int
    sequence_number: str
    tenant_id: str
    bucket: str
    size: int
    counted: bool = True
    event_id: str = ""

    @property
    def marks_seen(self) -> bool:
        """Whether applying this record puts a seen marker."""
        return self.counted and bool(self.event_id)

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
        seen_id = self.event_id if is_derived_id(self.event_id) else ""
        return Countable(
            index, self.sequence_number, self.tenant_id, self.bucket, self.size, counted, seen_id
        )


@dataclass
class RollupOutcome:
    failed: dict[int, BaseException] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0
    replays: int = 0  # records not counted because their id was already seen
    transactions: int = 0


def bucket_of(env: Envelope) -> str:
    """``2026-11-22T10:15#event``: the minute of ``received_at`` and the kind."""
    return f"{env['received_at'][:16]}#{env['kind']}"


def plan_runs(records: Sequence[Countable], max_counters: int) -> list[list[Countable]]:
    """Consecutive runs of records, each writing at most ``max_counters`` items: its distinct counters
    and a seen marker per record that puts one."""
    runs: list[list[Countable]] = []
    run: list[Countable] = []
    keys: set[tuple[str, str]] = set()
    used = 0
    for record in records:
        key = (record.tenant_id, record.bucket)
        cost = (record.counted and key not in keys) + record.marks_seen
        if cost and used + cost > max_counters and run:
            runs.append(run)
            run, keys, used = [], set(), 0
            cost = record.counted + record.marks_seen
        run.append(record)
        used += cost
        if record.counted:
            keys.add(key)
    if run:
        runs.append(run)
    return runs


def drop_seen(records: Sequence[Countable], seen: Collection[SeenKey]) -> list[Countable]:
    """The records with those whose (tenant, event_id) is in ``seen`` turned into uncounted ones."""
    return [
        replace(r, counted=False, event_id="") if r.marks_seen and (r.tenant_id, r.event_id) in seen else r
        for r in records
    ]


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
    *,
    seen_window: int = 0,
    now: int = 0,
) -> RollupOutcome:
    """Apply a batch's records (in sequence order) once; the positions to report when a write failed.

    With a ``seen_window`` (seconds), records with a derived id already seen are not counted, and the
    others are remembered until ``now + seen_window``; 0 turns the seen-set off.
    """
    outcome = RollupOutcome()
    if not records:
        return outcome
    if not seen_window:
        records = [replace(r, event_id="") if r.event_id else r for r in records]
    try:
        checkpoint = store.read_checkpoint(shard_key)
        high = -1 if checkpoint is None else int(checkpoint)
        fresh = [r for r in records if r.sequence > high]
        wanted = {(r.tenant_id, r.event_id) for r in fresh if r.marks_seen}
        if wanted:
            fresh = drop_seen(fresh, store.read_seen(wanted, now))
    except Exception as exc:
        outcome.failed = {r.index: exc for r in records}
        return outcome
    outcome.skipped = len(records) - len(fresh)
    outcome.replays = sum(r.counted for r in records if r.sequence > high) - sum(r.counted for r in fresh)
    for run in plan_runs(fresh, (max_items or MAX_TRANSACTION_ITEMS) - 1):  # one slot: the checkpoint
        marks = [(r.tenant_id, r.event_id) for r in run if r.marks_seen]
        try:
            store.apply(
                shard_key, aggregate(run), checkpoint, run[-1].sequence_number, marks, now, now + seen_window
            )
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

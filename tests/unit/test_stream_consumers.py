"""Stream consumer logic without AWS: ordered partial failures, the archive cut-back, rollup runs."""

from __future__ import annotations

import base64
import copy
import gzip
from collections.abc import Collection, Sequence
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response

from consumers.archiver.archive import ArchiveLine, archive_batch, group_of, object_key
from consumers.processing import HeldBack, Staged, StagedBatchProcessor
from consumers.rollup.counters import (
    Countable,
    PreparedCount,
    aggregate,
    apply_rollup,
    is_derived_id,
    plan_runs,
)
from consumers.stream import duplicate_positions
from core.ids import derive_event_id, derive_webhook_event_id, new_event_id
from tests.conftest import load_event

SEQ = 49590338271490256608559692538361571095921575989136588898


def kinesis_event(n: int) -> dict[str, Any]:
    template = load_event("kinesis_batch")["Records"][0]
    records = []
    for i in range(n):
        r = copy.deepcopy(template)
        r["kinesis"]["sequenceNumber"] = str(SEQ + i)
        r["kinesis"]["data"] = base64.b64encode(str(i).encode()).decode()
        records.append(r)
    return {"Records": records}


def reported(response: dict[str, Any]) -> list[int]:
    return sorted(int(f["itemIdentifier"]) - SEQ for f in response["batchItemFailures"])


# --- the ordered processor --------------------------------------------------------------------------


def run(
    n: int, commit_fails: set[int], handler_fails: set[int] = frozenset(), ordered: bool = True
) -> tuple[list[int], list[int]]:  # type: ignore[assignment]
    committed: list[int] = []

    def handler(record: Any) -> int:
        value = int(record.kinesis.data_as_text())
        if value in handler_fails:
            raise ValueError("bad record")
        return value

    def commit(staged: list[Staged], context: Any) -> dict[int, BaseException]:
        committed.extend(s.value for s in staged)
        return {s.index: RuntimeError("write failed") for s in staged if s.value in commit_fails}

    processor = StagedBatchProcessor(EventType.KinesisDataStreams, commit, ordered=ordered)
    response = process_partial_response(event=kinesis_event(n), record_handler=handler, processor=processor)
    return reported(response), committed


def test_a_commit_failure_reports_it_and_every_later_record() -> None:
    failures, _ = run(6, commit_fails={3})
    assert failures == [3, 4, 5]


def test_after_a_handler_failure_later_records_are_not_committed() -> None:
    failures, committed = run(6, commit_fails=set(), handler_fails={2})
    assert committed == [0, 1]  # 3..5 would be applied twice after the redelivery from 2
    assert failures == [2, 3, 4, 5]


def test_unordered_mode_reports_only_the_failed_records() -> None:
    failures, committed = run(6, commit_fails={1, 4}, handler_fails={2}, ordered=False)
    assert committed == [0, 1, 3, 4, 5]
    assert failures == [1, 2, 4]


def test_whole_batch_failure_is_a_response_not_an_exception() -> None:
    failures, _ = run(3, commit_fails={0, 1, 2})
    assert failures == [0, 1, 2]


def test_a_crashing_commit_fails_every_staged_record() -> None:
    def commit(staged: list[Staged], context: Any) -> dict[int, BaseException]:
        raise KeyError("bug")

    processor = StagedBatchProcessor(EventType.KinesisDataStreams, commit, ordered=True)
    response = process_partial_response(
        event=kinesis_event(3), record_handler=lambda record: 1, processor=processor
    )
    assert reported(response) == [0, 1, 2]


def test_failures_are_reported_in_batch_order_and_the_processor_is_reusable() -> None:
    def handler(record: Any) -> int:
        value = int(record.kinesis.data_as_text())
        if value == 3:
            raise ValueError("bad record")
        return value

    def commit(staged: list[Staged], context: Any) -> dict[int, BaseException]:
        return {s.index: RuntimeError("write failed") for s in staged if s.value == 1}

    processor = StagedBatchProcessor(EventType.KinesisDataStreams, commit, ordered=False)
    for _ in range(2):  # a warm container: nothing of the previous batch is left over
        response = process_partial_response(
            event=kinesis_event(5), record_handler=handler, processor=processor
        )
        assert [int(f["itemIdentifier"]) - SEQ for f in response["batchItemFailures"]] == [1, 3]
        assert len(processor.success_messages) == 3


# --- the archive ------------------------------------------------------------------------------------


class MemoryArchive:
    def __init__(self, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.objects: dict[str, bytes] = {}
        self.fail = set(fail)

    def put(self, key: str, body: bytes) -> None:
        if any(f in key for f in self.fail):
            raise RuntimeError("S3 down")
        self.objects[key] = body

    def lines(self) -> dict[str, list[int]]:
        return {k: [int(x) for x in gzip.decompress(v).split()] for k, v in self.objects.items()}


def lines(groups: str, first: int = 0) -> list[ArchiveLine]:
    """One line per letter: the letter is the group, the line is the position."""
    return [
        ArchiveLine(first + i, str(SEQ + first + i), (g, "2026-11-22", "10"), f"{first + i}\n".encode())
        for i, g in enumerate(groups)
    ]


def test_object_key_layout() -> None:
    env = {"tenant_id": "acme", "received_at": "2026-11-22T09:59:59.000001Z"}
    assert (
        object_key(group_of(env), "shardId-000000000001", "42")
        == "tenant=acme/dt=2026-11-22/hour=09/shardId-000000000001-42.ndjson.gz"
    )


def test_gzip_bytes_are_reproducible() -> None:
    a, b = MemoryArchive(), MemoryArchive()
    archive_batch(lines("abab"), "s", a)
    archive_batch(lines("abab"), "s", b)
    assert a.objects == b.objects


def test_failure_cuts_earlier_groups_back_and_reports_from_the_failed_group() -> None:
    # GIVEN groups a=[0,3,5] b=[1,4] c=[2,6]; c cannot be written
    archive = MemoryArchive(fail={"tenant=c/"})
    failed = archive_batch(lines("abcabac"), "s", archive)
    # THEN a and b hold only their records before 2, and 2.. are reported
    assert sorted(failed) == [2, 3, 4, 5, 6]
    assert isinstance(failed[3], HeldBack)
    assert not isinstance(failed[2], HeldBack)
    assert sorted(archive.lines().values()) == [[0], [1]]
    # WHEN the records from 2 on are redelivered
    archive.fail.clear()
    assert archive_batch(lines("cabac", first=2), "s", archive) == {}
    # THEN every record is in exactly one object
    assert sorted(x for v in archive.lines().values() for x in v) == list(range(7))


def test_a_failed_cut_back_moves_the_checkpoint_earlier() -> None:
    # GIVEN a=[0,2] b=[1,3]; b's cut-back rewrite fails too (b is down entirely), c at 4 unused
    archive = MemoryArchive(fail={"tenant=b/"})
    failed = archive_batch(lines("abab"), "s", archive)
    assert sorted(failed) == [1, 2, 3]  # the checkpoint is b's first record
    assert archive.lines() == {object_key(("a", "2026-11-22", "10"), "s", str(SEQ)): [0]}
    archive.fail.clear()
    archive_batch(lines("bab", first=1), "s", archive)
    assert sorted(x for v in archive.lines().values() for x in v) == [0, 1, 2, 3]


# --- the rollup -------------------------------------------------------------------------------------


def countables(keys: str, first: int = 0, size: int = 10) -> list[Countable]:
    return [
        Countable(first + i, str(SEQ + first + i), "acme", f"2026-11-22T10:0{k}#event", size)
        for i, k in enumerate(keys)
    ]


class MemoryRollup:
    def __init__(self) -> None:
        self.checkpoint: str | None = None
        self.counters: dict[tuple[str, str], tuple[int, int]] = {}
        self.seen: dict[tuple[str, str], int] = {}  # (tenant, event_id) -> expires_at
        self.fail_calls: set[int] = set()
        self.calls = 0
        self.items_per_call: list[int] = []

    def read_checkpoint(self, shard_key: str) -> str | None:
        return self.checkpoint

    def read_seen(self, keys: Collection[tuple[str, str]], now: int) -> set[tuple[str, str]]:
        return {k for k in keys if self.seen.get(k, 0) > now}

    def apply(
        self,
        shard_key: str,
        deltas: dict[tuple[str, str], tuple[int, int]],
        old: str | None,
        new: str,
        seen: Sequence[tuple[str, str]] = (),
        now: int = 0,
        expires_at: int = 0,
    ) -> None:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise RuntimeError("TransactionCanceled")
        assert old == self.checkpoint, "the condition on the old checkpoint"
        if any(self.seen.get(k, 0) > now for k in seen):
            raise RuntimeError("TransactionCanceled: ConditionalCheckFailed on a seen marker")
        self.items_per_call.append(len(deltas) + len(seen) + 1)
        for k, (n, b) in deltas.items():
            n0, b0 = self.counters.get(k, (0, 0))
            self.counters[k] = (n0 + n, b0 + b)
        self.seen.update((k, expires_at) for k in seen)
        self.checkpoint = new


def test_runs_hold_at_most_the_counter_budget_in_sequence_order() -> None:
    runs = plan_runs(countables("0123012345"), max_counters=3)
    assert [[c.index for c in run] for run in runs] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert all(len(aggregate(run)) <= 3 for run in runs)


def test_apply_skips_what_the_checkpoint_covers() -> None:
    store = MemoryRollup()
    records = countables("001")
    apply_rollup(records, "k", store)
    outcome = apply_rollup(records, "k", store)
    assert outcome.skipped == 3
    assert store.counters == {
        ("acme", "2026-11-22T10:00#event"): (2, 20),
        ("acme", "2026-11-22T10:01#event"): (1, 10),
    }


def test_a_failed_run_reports_itself_and_everything_after_and_the_redelivery_is_exact() -> None:
    store = MemoryRollup()
    store.fail_calls = {2}
    records = countables("0123456789")
    outcome = apply_rollup(records, "k", store, max_items=4)  # 3 counters per transaction
    assert sorted(outcome.failed) == list(range(3, 10))
    assert store.checkpoint == str(SEQ + 2)
    apply_rollup(records, "k", store, max_items=4)  # Lambda redelivers from the checkpoint (or before)
    assert store.counters == {("acme", f"2026-11-22T10:0{k}#event"): (1, 10) for k in range(10)}


def test_duplicates_move_the_checkpoint_without_counting() -> None:
    store = MemoryRollup()
    records = [
        *countables("0"),
        Countable(1, str(SEQ + 1), "acme", "2026-11-22T10:00#event", 10, counted=False),
    ]
    apply_rollup(records, "k", store)
    assert store.counters == {("acme", "2026-11-22T10:00#event"): (1, 10)}
    assert store.checkpoint == str(SEQ + 1)


def test_duplicate_positions() -> None:
    assert duplicate_positions([(0, "a", "e1"), (1, "b", "e1"), (2, "a", "e1"), (3, "a", "e2")]) == {2}


@pytest.mark.parametrize("bad", [b"not json", orjson.dumps({"v": 1})])
def test_stream_decode_marks_invalid_records(bad: bytes) -> None:
    from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

    from consumers.stream import decode

    raw = kinesis_event(1)["Records"][0]
    raw["kinesis"]["data"] = base64.b64encode(bad).decode()
    decoded = decode(KinesisStreamRecord(raw))
    assert decoded.envelope is None
    assert decoded.invalid in {"not_json", "invalid_envelope"}
    assert decoded.sequence == SEQ


# --- the rollup's seen-set: replays are not counted again (issue 15) ---------------------------------------

WINDOW = 7 * 86400
T0 = 1_800_000_000
REPLAYED = derive_webhook_event_id("acme", "gh", "sha256:abc#0")


def deliveries(event_ids: list[str], first: int = 0) -> list[Countable]:
    """Records of one shard, in order, as the rollup handler prepares them (duplicates in the batch aside)."""
    return [
        PreparedCount(str(SEQ + first + i), e, "acme", "2026-11-22T10:00#event", 10).at(
            first + i, counted=True
        )
        for i, e in enumerate(event_ids)
    ]


def test_a_replayed_derived_id_is_counted_once_within_the_window() -> None:
    # GIVEN a delivery counted once, then replayed six times in later batches inside the window
    store = MemoryRollup()
    apply_rollup(deliveries([REPLAYED]), "k", store, seen_window=WINDOW, now=T0)
    for n in range(1, 7):
        outcome = apply_rollup(
            deliveries([REPLAYED], first=n), "k", store, seen_window=WINDOW, now=T0 + n * 60
        )
        # THEN each replay moves the checkpoint but is not counted
        assert (outcome.applied, outcome.replays) == (0, 1)
    assert store.counters == {("acme", "2026-11-22T10:00#event"): (1, 10)}
    assert store.checkpoint == str(SEQ + 6)


def test_a_replay_after_the_window_is_counted_again() -> None:
    store = MemoryRollup()
    apply_rollup(deliveries([REPLAYED]), "k", store, seen_window=WINDOW, now=T0)
    apply_rollup(deliveries([REPLAYED], first=1), "k", store, seen_window=WINDOW, now=T0 + WINDOW + 1)
    assert store.counters == {("acme", "2026-11-22T10:00#event"): (2, 20)}


def test_server_assigned_ids_put_no_marker_and_are_always_counted() -> None:
    store = MemoryRollup()
    records = deliveries([new_event_id(), new_event_id(), REPLAYED])
    apply_rollup(records, "k", store, seen_window=WINDOW, now=T0)
    assert list(store.seen) == [("acme", REPLAYED)]
    assert store.counters == {("acme", "2026-11-22T10:00#event"): (3, 30)}


def test_a_seen_set_of_zero_seconds_is_off() -> None:
    store = MemoryRollup()
    apply_rollup(deliveries([REPLAYED]), "k", store, seen_window=0, now=T0)
    apply_rollup(deliveries([REPLAYED], first=1), "k", store, seen_window=0, now=T0)
    assert not store.seen
    assert store.counters == {("acme", "2026-11-22T10:00#event"): (2, 20)}


def test_a_replay_counted_meanwhile_on_another_shard_fails_the_run_and_the_redelivery_skips_it() -> None:
    # GIVEN a batch that read no marker, and another shard that counts the same id before it commits
    store = MemoryRollup()
    records = deliveries([new_event_id(), REPLAYED])
    real_read = store.read_seen

    def racing_read(keys: Collection[tuple[str, str]], now: int) -> set[tuple[str, str]]:
        found = real_read(keys, now)
        store.seen[("acme", REPLAYED)] = now + WINDOW  # the other shard's transaction lands now
        return found

    store.read_seen = racing_read  # type: ignore[method-assign]
    # WHEN the batch commits THEN the conditional marker fails it, nothing of it applied
    outcome = apply_rollup(records, "k", store, seen_window=WINDOW, now=T0)
    assert sorted(outcome.failed) == [0, 1]
    assert store.counters == {}
    # AND the redelivery counts the new record and not the replay
    store.read_seen = real_read  # type: ignore[method-assign]
    outcome = apply_rollup(records, "k", store, seen_window=WINDOW, now=T0)
    assert (outcome.applied, outcome.replays) == (1, 1)
    assert store.counters == {("acme", "2026-11-22T10:00#event"): (1, 10)}


def test_runs_count_seen_markers_against_the_transaction_limit() -> None:
    store = MemoryRollup()
    ids = [derive_webhook_event_id("acme", "gh", f"sha256:{i}#0") for i in range(250)]
    apply_rollup(deliveries(ids), "k", store, seen_window=WINDOW, now=T0)
    assert max(store.items_per_call) <= 100
    assert store.counters == {("acme", "2026-11-22T10:00#event"): (250, 2500)}
    assert len(store.seen) == 250


def test_is_derived_id() -> None:
    assert is_derived_id(derive_event_id("acme", "event", "e-1"))
    assert is_derived_id(REPLAYED)
    assert not is_derived_id(new_event_id())
    assert not is_derived_id("")

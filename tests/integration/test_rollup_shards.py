"""The rollup on a two-shard stream: both shards' transactions update the same (tenant, minute, kind)
counters at the same time. DynamoDB cancels one of two overlapping transactions (TransactionConflict);
moto serializes them, so ``ConflictingDynamo`` emulates it: a transaction that touches an item another
one is writing at that moment is cancelled. The counts must still come out exact, with no failed batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from consumers.rollup.counters import Countable, apply_rollup
from consumers.rollup.store import CHECKPOINT_TENANT, SEEN_PREFIX, DynamoRollupStore, is_transaction_conflict
from core.retry import Backoff
from local.stack import create_table
from tests.conftest import REGION

TABLE = "sluice-rollup-shards"


class ConflictingDynamo:
    """A client that cancels a transaction overlapping one in flight, as DynamoDB does."""

    def __init__(self, real: Any, hold_seconds: float = 0.005) -> None:
        self.real, self.hold = real, hold_seconds
        self.lock = threading.Lock()
        self.in_flight: set[str] = set()
        self.cancelled = 0

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> Any:
        keys = [repr(sorted(next(iter(op.values()))["Key" if "Key" in next(iter(op.values())) else "Item"].items()))
                for op in TransactItems]  # fmt: skip
        with self.lock:
            clash = [k in self.in_flight for k in keys]
            if any(clash):
                self.cancelled += 1
                reasons = [{"Code": "TransactionConflict" if c else "None"} for c in clash]
                error = {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                         "CancellationReasons": reasons}  # fmt: skip
                raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]
            self.in_flight.update(keys)
        try:
            time.sleep(self.hold)  # the window in which another shard's transaction meets this one
            return self.real.transact_write_items(TransactItems=TransactItems)
        finally:
            with self.lock:
                self.in_flight.difference_update(keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "rollup", TABLE)
        yield client


def shard_batches(shard: int, batches: int, per_batch: int) -> list[list[Countable]]:
    """Records of one shard, all of tenant acme in one minute: every batch of both shards updates one counter."""
    out = []
    for b in range(batches):
        out.append([
            Countable(i, str(10**6 * (shard + 1) + b * per_batch + i), "acme", "2026-11-22T10:15#event", 100)
            for i in range(per_batch)
        ])  # fmt: skip
    return out


def run_two_shards(store: DynamoRollupStore, batches: int = 12, per_batch: int = 5) -> list[dict[int, Any]]:
    failures: list[dict[int, Any]] = []

    def consume(shard: int) -> None:
        for records in shard_batches(shard, batches, per_batch):
            outcome = apply_rollup(records, f"rollup#stream#shard-{shard}", store)
            if outcome.failed:
                failures.append(outcome.failed)

    threads = [threading.Thread(target=consume, args=(shard,)) for shard in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def counter(client: Any) -> tuple[int, int]:
    items = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    rows = [
        i
        for i in items
        if i["tenant_id"]["S"] not in (CHECKPOINT_TENANT,) and not i["tenant_id"]["S"].startswith(SEEN_PREFIX)
    ]
    assert len(rows) == 1
    return int(rows[0]["record_count"]["N"]), int(rows[0]["byte_count"]["N"])


def test_two_shards_updating_one_counter_at_once_count_exactly(ddb: Any) -> None:
    # GIVEN two shards' consumers writing the same counter concurrently, through conflicting transactions
    client = ConflictingDynamo(ddb)
    store = DynamoRollupStore(TABLE, client, backoff=Backoff(base=0.002, cap=0.02, max_attempts=50))
    # WHEN each applies 12 batches of 5 records
    failures = run_two_shards(store)
    # THEN conflicts happened, were retried inside the function, and the count is exact
    assert client.cancelled > 0 and store.conflicts == client.cancelled
    assert failures == []
    assert counter(ddb) == (2 * 12 * 5, 2 * 12 * 5 * 100)


def test_without_conflict_retries_batches_fail_and_go_back_to_the_mapping(ddb: Any) -> None:
    client = ConflictingDynamo(ddb)
    store = DynamoRollupStore(TABLE, client, backoff=Backoff(max_attempts=1))
    failures = run_two_shards(store)
    assert client.cancelled > 0 and failures  # what each retry of the mapping would have cost


def test_only_a_pure_conflict_is_retried() -> None:
    def cancelled(*codes: str) -> ClientError:
        error = {"Error": {"Code": "TransactionCanceledException", "Message": "x"},
                 "CancellationReasons": [{"Code": c} for c in codes]}  # fmt: skip
        return ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]

    assert is_transaction_conflict(cancelled("None", "TransactionConflict"))
    assert not is_transaction_conflict(cancelled("ConditionalCheckFailed", "TransactionConflict"))
    assert not is_transaction_conflict(cancelled("ThrottlingError"))
    assert not is_transaction_conflict(ClientError({"Error": {"Code": "ThrottlingException"}}, "X"))  # type: ignore[arg-type]

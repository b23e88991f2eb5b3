"""The rollup against moto DynamoDB: counts exact after a repeated batch and after a partial redelivery."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from consumers.rollup import handler as rollup
from consumers.rollup.store import CHECKPOINT_TENANT, SEEN_PREFIX, DynamoRollupStore
from core import envelope
from core.ids import derive_webhook_event_id
from local.stack import create_table
from tests.conftest import REGION
from tests.integration.test_archiver_handler import kinesis_event, make_envelope
from tests.support.fakes import LambdaContext

TABLE = "sluice-rollup-test"


class FlakyRollupStore(DynamoRollupStore):
    """The real adapter over moto; ``fail_calls`` lists which apply() calls (1-based) raise."""

    def __init__(self, table: str, client: Any) -> None:
        super().__init__(table, client)
        self.calls = 0
        self.fail_calls: set[int] = set()

    def apply(self, shard_key: str, deltas: Any, old: str | None, new: str, *seen: Any) -> None:
        self.calls += 1
        if self.calls in self.fail_calls:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "x"}}, "TransactWriteItems"
            )
        super().apply(shard_key, deltas, old, new, *seen)


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, FlakyRollupStore]]:
    monkeypatch.setenv("ROLLUP_TABLE_NAME", TABLE)
    monkeypatch.setattr(rollup.metrics, "namespace", "sluice-test")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "rollup", TABLE)
        store = FlakyRollupStore(TABLE, client)
        rollup.settings.cache_clear()
        monkeypatch.setattr(rollup, "rollup_store", functools.cache(lambda: store))
        yield client, store
        rollup.settings.cache_clear()


def counters(client: Any) -> dict[tuple[str, str], tuple[int, int]]:
    items = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {
        (i["tenant_id"]["S"], i["bucket"]["S"]): (int(i["record_count"]["N"]), int(i["byte_count"]["N"]))
        for i in items
        if i["tenant_id"]["S"] != CHECKPOINT_TENANT and not i["tenant_id"]["S"].startswith(SEEN_PREFIX)
    }


def expected(datas: list[bytes], envs: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for data, env in zip(datas, envs, strict=True):
        key = (env["tenant_id"], f"{env['received_at'][:16]}#{env['kind']}")
        n, b = out.get(key, (0, 0))
        out[key] = (n + 1, b + len(data))
    return out


def batch(n: int) -> tuple[list[dict[str, Any]], list[bytes]]:
    envs = [
        make_envelope(("acme", "globex")[i % 2], f"2026-11-22T10:{i % 7:02d}:00.000000Z") for i in range(n)
    ]
    return envs, [envelope.dumps(e).encode() for e in envs]


def test_same_batch_twice_counts_once(table: tuple[Any, FlakyRollupStore]) -> None:
    client, _ = table
    envs, datas = batch(20)
    event = kinesis_event([*datas, b"{}"])  # one invalid record: skipped, not failed
    assert rollup.lambda_handler(event, LambdaContext(remaining_ms=60_000)) == {"batchItemFailures": []}
    assert rollup.lambda_handler(event, LambdaContext(remaining_ms=60_000)) == {"batchItemFailures": []}
    assert counters(client) == expected(datas, envs)


def test_partial_failure_then_redelivery_counts_exactly(
    table: tuple[Any, FlakyRollupStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN transactions of at most 4 counters, and the second transaction of the batch fails
    client, store = table
    import consumers.rollup.counters as counters_module

    monkeypatch.setattr(counters_module, "MAX_TRANSACTION_ITEMS", 5)
    envs, datas = batch(30)
    event = kinesis_event(datas)
    store.fail_calls = {2}

    # WHEN
    response = rollup.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    # THEN the first run is applied and everything from the failed run on is reported
    reported = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    start = seqs.index(reported[0])
    assert 0 < start < 30
    assert reported == seqs[start:]
    assert counters(client) == expected(datas[:start], envs[:start])

    # WHEN Lambda redelivers the whole batch (a retry from an older checkpoint) and then the rest
    assert rollup.lambda_handler(event, LambdaContext(remaining_ms=60_000)) == {"batchItemFailures": []}
    assert rollup.lambda_handler(
        kinesis_event(datas[start:], first=start), LambdaContext(remaining_ms=60_000)
    ) == {"batchItemFailures": []}

    # THEN each record is counted exactly once
    assert counters(client) == expected(datas, envs)
    assert store.calls > 3  # several transactions per batch: the chunking was exercised


def test_duplicate_event_id_in_a_batch_counts_once(table: tuple[Any, FlakyRollupStore]) -> None:
    client, _ = table
    envs, datas = batch(1)
    rollup.lambda_handler(kinesis_event(datas * 3), LambdaContext(remaining_ms=60_000))
    assert counters(client) == expected(datas, envs)
    assert Counter(k[0] for k in counters(client)) == Counter({"acme": 1})


# --- replays: a derived id is counted once within the seen window (issue 15) ------------------------------


def shard_event(datas: list[bytes], first: int, shard: str = "shardId-000000000000") -> dict[str, Any]:
    event = kinesis_event(datas, first=first)
    for record in event["Records"]:
        record["eventID"] = f"{shard}:{record['kinesis']['sequenceNumber']}"
    return event


def test_replays_of_a_webhook_delivery_are_not_counted_again(
    table: tuple[Any, FlakyRollupStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one webhook delivery (a derived id) and six replays of it, each ingested later (a new
    # received_at) and read in a later batch, one of them on another shard, each beside a fresh record
    client, _ = table
    replayed = derive_webhook_event_id("acme", "gh", "sha256:abc#0")
    first = {**make_envelope("acme", "2026-11-22T10:00:00.000000Z"), "event_id": replayed}
    rollup.lambda_handler(
        shard_event([envelope.dumps(first).encode()], 0), LambdaContext(remaining_ms=60_000)
    )
    for n in range(1, 7):
        replay = {**first, "received_at": f"2026-11-22T10:0{n}:00.000000Z"}
        fresh = make_envelope("acme", f"2026-11-22T10:0{n}:00.000000Z")
        datas = [envelope.dumps(replay).encode(), envelope.dumps(fresh).encode()]
        shard = "shardId-000000000001" if n == 3 else "shardId-000000000000"
        response = rollup.lambda_handler(shard_event(datas, 2 * n, shard), LambdaContext(remaining_ms=60_000))
        assert response == {"batchItemFailures": []}
    # THEN the tenant's count is the delivery once plus the six fresh records
    assert sum(n for (tenant, _), (n, _) in counters(client).items() if tenant == "acme") == 7

    # WHEN a replay comes after the window
    later = int(rollup.time.time()) + rollup.settings().rollup_dedup_window_seconds + 60
    monkeypatch.setattr(rollup.time, "time", lambda: float(later))
    replay = {**first, "received_at": "2026-11-22T11:00:00.000000Z"}
    rollup.lambda_handler(
        shard_event([envelope.dumps(replay).encode()], 100), LambdaContext(remaining_ms=60_000)
    )
    # THEN it is counted again (the expired marker is replaced, even before TTL deletes it)
    assert sum(n for (tenant, _), (n, _) in counters(client).items() if tenant == "acme") == 8

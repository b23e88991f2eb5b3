"""The shared quota state in a moto DynamoDB table (ingest/quota_store.py): two containers, each with its
own local buckets and its own view of the item, together never admit more than burst + rate * time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ingest.quota_store import DynamoQuotaStore, quota_key, state_key
from ingest.quotas import Limit, QuotaEnforcer, QuotaExceeded, QuotaPolicy
from local.stack import create_table
from tests.conftest import REGION

TABLE = "sluice-api-keys"
POLICY = QuotaPolicy(requests=Limit(50, 50), records=Limit(100, 300))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "api-keys", TABLE)
        yield client


def admitted(enforcer: QuotaEnforcer, records: int, tenant: str = "acme") -> int:
    try:
        enforcer.admit(tenant, {"requests": 1})
        enforcer.admit(tenant, {"records": records})
    except QuotaExceeded:
        return 0
    return records


def test_two_containers_never_admit_more_than_burst_plus_rate_over_a_window(ddb: Any) -> None:
    # GIVEN two containers: their own buckets and store adapters, one table, one injected clock
    clock = Clock(1_800_000_000.0)
    containers = [QuotaEnforcer(POLICY, DynamoQuotaStore(TABLE, ddb), clock) for _ in range(2)]
    start, total = clock.now, 0
    # WHEN both take 20-record requests every 50 ms for 4 s (4x the quota)
    for step in range(80):
        clock.now = start + step * 0.05
        for enforcer in containers:
            total += admitted(enforcer, 20)
        # THEN together they stay within one bucket of (rate, burst) at every moment
        assert total <= 300 + 100 * (clock.now - start)
    assert total >= 300 + 100 * 3  # and the quota is usable, not starved by the leases
    item = ddb.get_item(TableName=TABLE, Key={"key_hash": {"S": state_key("acme")}})["Item"]
    assert int(item["expires_at"]["N"]) > start  # TTL'd
    calls = sum(c.counters.store_calls for c in containers)
    assert calls <= 2 * 4 * 4  # leases, not a call per request (160 requests)


def test_overrides_stored_with_the_keys_apply(ddb: Any) -> None:
    ddb.put_item(
        TableName=TABLE,
        Item={"key_hash": {"S": quota_key("big")}, "tenant_id": {"S": "big"},
              "quota": {"S": '{"records": {"rate": 1000, "burst": 2000}}'}},
    )  # fmt: skip
    enforcer = QuotaEnforcer(POLICY, DynamoQuotaStore(TABLE, ddb), Clock(1_800_000_000.0))
    assert enforcer.policy("big").records == Limit(1000, 2000)
    assert admitted(enforcer, 2000, "big") == 2000
    assert admitted(enforcer, 301, "small") == 0


def test_an_unreachable_store_fails_open_on_the_local_buckets(ddb: Any) -> None:
    enforcer = QuotaEnforcer(POLICY, DynamoQuotaStore("no-such-table", ddb), Clock(1_800_000_000.0))
    assert admitted(enforcer, 300) == 300
    assert admitted(enforcer, 1) == 0  # the local bucket still refuses
    assert enforcer.counters.store_errors >= 1


class AlwaysConflicting:
    """A client whose every conditional write loses to another container's."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, 0

    def update_item(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        self.calls += 1
        error = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "lost"}, "Item": {}}
        raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]

    def get_item(self, **kwargs: Any) -> Any:
        return self.real.get_item(**kwargs)


def test_a_lease_that_keeps_conflicting_is_refused_not_failed_open(ddb: Any) -> None:
    client = AlwaysConflicting(ddb)
    enforcer = QuotaEnforcer(POLICY, DynamoQuotaStore(TABLE, client), Clock(1_800_000_000.0))
    assert admitted(enforcer, 20) == 0
    assert enforcer.counters.store_errors == 0 and client.calls == 8

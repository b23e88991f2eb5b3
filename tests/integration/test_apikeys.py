"""ApiKeyStore, the authorizer and the key CLI against a real (moto) DynamoDB table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ingest import authorizer, keys_cli
from ingest.apikeys import ApiKeyNotFound, ApiKeyStore, hash_key, key_id_of
from local.stack import create_table
from tests.conftest import REGION

pytestmark = pytest.mark.integration

TABLE = "sluice-api-keys-test"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A mocked account with the API keys table as Terraform defines it: pk ``key_hash`` (S) only."""
    monkeypatch.setenv("API_KEYS_TABLE_NAME", TABLE)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "api-keys", TABLE)
        yield client


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def raw_items(client: Any) -> list[dict[str, Any]]:
    return client.scan(TableName=TABLE)["Items"]  # type: ignore[no-any-return]


def test_create_lookup_list_revoke_lookup(dynamodb: Any) -> None:
    clock = Clock()
    store = ApiKeyStore(TABLE, client=dynamodb, clock=clock)
    # GIVEN a key created for acme
    key, record = store.create("acme", "ci pipeline")
    assert (record.tenant_id, record.key_id, record.created_at) == (
        "acme",
        key_id_of(key),
        "2026-11-22T10:00:00Z",
    )
    # THEN it is stored by hash only: the plaintext is nowhere in the table
    [item] = raw_items(dynamodb)
    assert item["key_hash"] == {"S": hash_key(key)}
    assert key not in repr(item)
    # WHEN looked up THEN it maps to its tenant
    assert store.lookup(key) == "acme"
    # WHEN listed THEN the record shows, without hash or secret
    listed = store.list()
    assert listed == [record]
    assert hash_key(key) not in repr(listed)
    assert key not in repr(listed)
    # WHEN revoked THEN lookup fails, and list shows when
    clock.now += timedelta(hours=1)
    revoked = store.revoke(record.key_id)
    assert revoked.revoked_at == "2026-11-22T11:00:00Z"
    assert store.lookup(key) is None
    assert store.list()[0].revoked_at == "2026-11-22T11:00:00Z"


def test_revoke_is_idempotent_and_keeps_the_first_revocation_time(dynamodb: Any) -> None:
    clock = Clock()
    store = ApiKeyStore(TABLE, client=dynamodb, clock=clock)
    _, record = store.create("acme")
    first = store.revoke(record.key_id)
    clock.now += timedelta(days=1)
    assert store.revoke(record.key_id).revoked_at == first.revoked_at


def test_revoking_one_key_leaves_the_tenants_other_keys_working(dynamodb: Any) -> None:
    store = ApiKeyStore(TABLE, client=dynamodb)
    old_key, old = store.create("acme", "old")
    new_key, _ = store.create("acme", "new")
    store.revoke(old.key_id)
    assert (store.lookup(old_key), store.lookup(new_key)) == (None, "acme")


def test_list_filters_by_tenant(dynamodb: Any) -> None:
    store = ApiKeyStore(TABLE, client=dynamodb)
    store.create("acme")
    store.create("beta")
    store.create("acme")
    assert {r.tenant_id for r in store.list("acme")} == {"acme"}
    assert len(store.list("acme")) == 2
    assert len(store.list()) == 3


def test_revoke_of_an_unknown_key_id_raises_not_found_and_writes_nothing(dynamodb: Any) -> None:
    store = ApiKeyStore(TABLE, client=dynamodb)
    with pytest.raises(ApiKeyNotFound):
        store.revoke("AbCdEfGh")
    with pytest.raises(ApiKeyNotFound):
        store.revoke("not an id")
    assert raw_items(dynamodb) == []


def test_authorizer_against_the_real_store(dynamodb: Any) -> None:
    store = ApiKeyStore(TABLE, client=dynamodb)
    key, record = store.create("acme")
    event = {"headers": {"authorization": f"Bearer {key}"}}
    assert authorizer.authorize(event, store.lookup)["context"] == {
        "tenant_id": "acme",
        "key_id": record.key_id,
    }
    store.revoke(record.key_id)
    assert authorizer.authorize(event, store.lookup) == {"isAuthorized": False}


# --- the CLI, end to end through AuthorizerSettings and the shared client factory ------------------------------------


def test_cli_create_prints_the_key_once_then_list_and_revoke(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN a key is created
    assert keys_cli.main(["create", "--tenant", "acme", "--description", "ci"]) == 0
    out, err = capsys.readouterr()
    # THEN stdout is the key alone, and the warning says it is not stored
    key = out.strip()
    assert out == key + "\n"
    assert (out + err).count(key) == 1
    assert "not stored" in err
    assert f"Created key {key_id_of(key)} for tenant acme" in err
    store = ApiKeyStore(TABLE, client=dynamodb)
    assert store.lookup(key) == "acme"

    # WHEN listed THEN the key id and tenant show, the key does not
    assert keys_cli.main(["list", "--tenant", "acme"]) == 0
    out, _ = capsys.readouterr()
    key_id = key_id_of(key)
    assert key_id is not None
    header, row = out.splitlines()
    assert header.split() == ["KEY_ID", "TENANT", "STATUS", "CREATED_AT", "DESCRIPTION"]
    assert row.split()[:3] == [key_id, "acme", "active"]
    assert row.split()[-1] == "ci"
    assert key not in out

    # WHEN revoked by key id THEN the key stops working
    assert keys_cli.main(["revoke", key_id]) == 0
    out, _ = capsys.readouterr()
    assert f"Revoked key {key_id}" in out
    assert store.lookup(key) is None
    assert keys_cli.main(["list"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_cli_failures_have_distinct_exit_codes(
    dynamodb: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert keys_cli.main(["revoke", "AbCdEfGh"]) == keys_cli.EXIT_FAILED
    assert "no API key" in capsys.readouterr().err
    assert keys_cli.main(["create", "--tenant", "not/valid"]) == keys_cli.EXIT_USAGE
    assert "tenant id" in capsys.readouterr().err
    assert keys_cli.main(["create", "--tenant", "acme\n"]) == keys_cli.EXIT_USAGE  # `--tenant $'acme\n'`
    assert "tenant id" in capsys.readouterr().err
    monkeypatch.delenv("API_KEYS_TABLE_NAME")
    assert keys_cli.main(["list"]) == keys_cli.EXIT_USAGE
    assert "API_KEYS_TABLE_NAME" in capsys.readouterr().err
    assert raw_items(dynamodb) == []


def test_cli_reports_a_missing_table_as_an_aws_failure(
    dynamodb: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEYS_TABLE_NAME", "no-such-table")
    assert keys_cli.main(["list"]) == keys_cli.EXIT_FAILED
    assert "ResourceNotFoundException" in capsys.readouterr().err


def test_the_in_function_key_check_against_the_real_store(dynamodb: Any) -> None:
    # Segment, PostHog and Snowplow routes check keys in the ingest function (ingest/keyauth.py).
    from ingest import keyauth
    from ingest.problems import Problem

    store = ApiKeyStore(TABLE, client=dynamodb)
    key, record = store.create("acme")
    seconds = [0.0]
    cache = keyauth.KeyCache(store.lookup, ttl=60, clock=lambda: seconds[0])
    assert cache.tenant_for(key) == "acme"
    store.revoke(record.key_id)
    assert cache.tenant_for(key) == "acme"  # cached, as the authorizer's decision is on API Gateway
    seconds[0] = 61
    assert cache.tenant_for(key) is None
    # a store that cannot answer fails closed, and retryably
    broken = keyauth.KeyCache(ApiKeyStore("no-such-table", client=dynamodb).lookup)
    with pytest.raises(Problem) as refused:
        broken.tenant_for(key)
    assert (refused.value.status, refused.value.code) == (503, "auth-unavailable")

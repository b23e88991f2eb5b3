"""ApiKeyStore, the authorizer and the key CLI against a real (moto) DynamoDB table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
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


def raw_key_hash(client: Any, key_id: str) -> dict[str, str]:
    (item,) = [i for i in raw_items(client) if i["key_id"]["S"] == key_id]
    return item["key_hash"]  # type: ignore[no-any-return]


def test_cli_revoke_takes_a_key_id_starting_with_a_dash(
    dynamodb: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two keys whose ids start with "-" (key ids are base64url: a leading dash happens)
    store = ApiKeyStore(TABLE, client=dynamodb)
    records = []
    for _ in range(2):
        _, record = store.create("acme")
        records.append(record)
    ids = ["-" + r.key_id[1:] for r in records]
    for record, new_id in zip(records, ids, strict=True):
        dynamodb.update_item(
            TableName=TABLE,
            Key={"key_hash": raw_key_hash(dynamodb, record.key_id)},
            UpdateExpression="SET key_id = :k",
            ExpressionAttributeValues={":k": {"S": new_id}},
        )
    # WHEN revoked with --key-id=ID and with `revoke -- ID`
    assert keys_cli.main(["revoke", f"--key-id={ids[0]}"]) == 0
    assert keys_cli.main(["revoke", "--", ids[1]]) == 0
    # THEN both are revoked
    out = capsys.readouterr().out
    assert f"Revoked key {ids[0]}" in out and f"Revoked key {ids[1]}" in out
    # AND giving no id, or two, is a usage error
    with pytest.raises(SystemExit):
        keys_cli.main(["revoke"])


def test_cli_list_escapes_control_characters_and_has_json(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ApiKeyStore(TABLE, client=dynamodb).create("acme", "held by \x1b[31mmallory")
    assert keys_cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mmallory" in out
    assert keys_cli.main(["list", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "\x1b" not in line and orjson.loads(line)["tenant_id"] == "acme"


def test_quota_set_and_show_store_overrides_beside_the_keys_and_ingest_applies_them(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.quota_store import DynamoQuotaStore
    from ingest.quotas import Limit, QuotaEnforcer, QuotaPolicy

    # GIVEN a tenant with a key
    store = ApiKeyStore(TABLE, client=dynamodb)
    store.create("acme", "ci")
    # WHEN an operator sets two of its quotas, in two steps
    args = ["quota", "set", "--tenant", "acme", "--records-per-second", "500", "--records-burst", "2000"]
    assert keys_cli.main(args) == 0
    assert keys_cli.main(["quota", "set", "--tenant", "acme", "--requests-per-second", "5"]) == 0
    capsys.readouterr()
    # THEN show has both, list still shows keys only, and the ingest side reads them
    assert keys_cli.main(["quota", "show", "--tenant", "acme"]) == 0
    shown = capsys.readouterr().out
    assert "records: burst 2000, rate 500" in shown and "requests: rate 5" in shown
    assert [r.tenant_id for r in store.list()] == ["acme"]
    assert store.quota("beta") == {}
    enforcer = QuotaEnforcer(QuotaPolicy(records=Limit(10, 10)), DynamoQuotaStore(TABLE, dynamodb))
    assert enforcer.policy("acme").records == Limit(500, 2000)
    assert enforcer.policy("acme").requests == Limit(5, 5)
    assert enforcer.policy("beta").records == Limit(10, 10)


def test_quota_set_refuses_nothing_to_set_and_bad_tenants(dynamodb: Any) -> None:
    assert keys_cli.main(["quota", "set", "--tenant", "acme"]) == keys_cli.EXIT_USAGE
    assert (
        keys_cli.main(["quota", "set", "--tenant", "a/b", "--records-per-second", "1"]) == keys_cli.EXIT_USAGE
    )
    assert raw_items(dynamodb) == []


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

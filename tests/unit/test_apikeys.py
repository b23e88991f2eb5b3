"""API key format, hashing and the store's logic against an in-memory fake client (no sockets)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ingest.apikeys import (
    KEY_PREFIX,
    ApiKeyRecord,
    ApiKeyStore,
    generate_key,
    hash_key,
    is_valid_key_id,
    is_well_formed,
    key_id_of,
)


class RecordingClient:
    """A DynamoDB low-level client stand-in that records calls and replays canned responses."""

    def __init__(self, responses: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._responses = responses or {}

    def __getattr__(self, operation: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((operation, kwargs))
            queue = self._responses.get(operation, [])
            return queue.pop(0) if queue else {}

        return call


def test_generated_keys_have_the_prefix_256_random_bits_and_no_tenant() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith(KEY_PREFIX)
        assert len(key) == len(KEY_PREFIX) + 43  # token_urlsafe(32): 32 bytes as unpadded base64url
        assert is_well_formed(key)


def test_key_id_is_the_first_eight_characters_after_the_prefix() -> None:
    key = "slk_AbCdEfGh" + "x" * 35
    assert key_id_of(key) == "AbCdEfGh"
    assert is_valid_key_id("AbCdEfGh")


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "slk_",
        "slk_" + "a" * 42,  # one short
        "slk_" + "a" * 44,  # one long
        "sk_" + "a" * 44,
        "SLK_" + "a" * 43,
        "slk_" + "a" * 42 + "=",  # padding is never part of an issued key
        "slk_" + "a" * 42 + "\n",
        " slk_" + "a" * 43,
        None,
        42,
    ],
)
def test_malformed_keys_are_rejected_and_have_no_key_id(candidate: object) -> None:
    assert not is_well_formed(candidate)
    if isinstance(candidate, str):
        assert key_id_of(candidate) is None


def test_hash_is_hex_sha256_of_the_key() -> None:
    # Known answer computed outside Python: printf %s 'slk_test' | sha256sum
    assert hash_key("slk_test") == "34207d1a9c32cd0acb47b1f1d0e232f6b9f9049bb44e589e15ca2572153737e1"


def test_record_as_dict_carries_no_hash_or_secret() -> None:
    record = ApiKeyRecord("AbCdEfGh", "acme", "2026-01-01T00:00:00Z", "ci")
    assert set(record.as_dict()) == {"key_id", "tenant_id", "created_at", "description", "revoked_at"}
    assert record.active


def test_lookup_of_a_malformed_key_never_reaches_dynamodb() -> None:
    client = RecordingClient()
    store = ApiKeyStore("keys", client=client)
    assert store.lookup("Bearer nonsense") is None
    assert store.lookup("slk_short") is None
    assert client.calls == []


def test_lookup_reads_by_hash_and_returns_the_tenant_of_an_active_key() -> None:
    key = generate_key()
    client = RecordingClient({"get_item": [{"Item": {"tenant_id": {"S": "acme"}}}]})
    assert ApiKeyStore("keys", client=client).lookup(key) == "acme"
    [(operation, kwargs)] = client.calls
    assert operation == "get_item"
    assert kwargs["Key"] == {"key_hash": {"S": hashlib.sha256(key.encode()).hexdigest()}}
    assert key not in repr(kwargs)  # the plaintext never leaves the process


@pytest.mark.parametrize(
    "item",
    [
        None,
        {"tenant_id": {"S": "acme"}, "revoked_at": {"S": "2026-01-01T00:00:00Z"}},
        {"tenant_id": {"S": "not/a/tenant"}},
        {},
    ],
    ids=["unknown", "revoked", "corrupt-tenant", "no-tenant"],
)
def test_lookup_returns_none_for_unknown_revoked_or_corrupt_items(item: dict[str, Any] | None) -> None:
    client = RecordingClient({"get_item": [{} if item is None else {"Item": item}]})
    assert ApiKeyStore("keys", client=client).lookup(generate_key()) is None


def test_list_follows_scan_pages_and_never_projects_the_hash() -> None:
    page = [
        {"key_id": {"S": f"key{i:05d}"}, "tenant_id": {"S": "acme"}, "created_at": {"S": f"t{i}"}}
        for i in range(3)
    ]
    client = RecordingClient(
        {"scan": [{"Items": page[:2], "LastEvaluatedKey": {"key_hash": {"S": "h"}}}, {"Items": page[2:]}]}
    )
    records = ApiKeyStore("keys", client=client).list("acme")
    assert [r.key_id for r in records] == ["key00000", "key00001", "key00002"]
    first, second = (kwargs for _, kwargs in client.calls)
    assert "key_hash" not in first["ExpressionAttributeNames"].values()
    assert second["ExclusiveStartKey"] == {"key_hash": {"S": "h"}}


@pytest.mark.parametrize("tenant", ["", "a/b", "-lead", "x" * 65, "acme\n", "\nacme"])
def test_create_rejects_invalid_tenant_ids_before_writing(tenant: str) -> None:
    client = RecordingClient()
    with pytest.raises(ValueError, match="tenant id"):
        ApiKeyStore("keys", client=client).create(tenant)
    assert client.calls == []

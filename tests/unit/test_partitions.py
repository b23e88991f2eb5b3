"""Storage keys of a partitioned tenant (core/partitions.py), the merge of its keys' queries, the worker's
item keys and ingest's cached N: pure, no AWS."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.worker.items import prepare_record, stored_record
from core import envelope, redaction
from core.errors import PermanentError
from core.ids import new_event_id
from core.partitions import (
    MAX_PARTITIONS,
    InvalidPartitions,
    effective_partitions,
    lookup_keys,
    merge_by_sort_key,
    owns_key,
    parse_partitions,
    partition_index,
    partition_key,
    read_keys,
    tenant_of_key,
)
from ingest.publish import OutRecord, SqsPublisher, sqs_message_attributes, sqs_message_bytes
from ingest.quotas import QuotaStoreUnavailable
from ingest.tenant_partitions import TenantPartitions

tenants = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z", fullmatch=True)
event_ids = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=80))
counts = st.integers(min_value=1, max_value=MAX_PARTITIONS)
REDACTOR = redaction.load()


def test_one_partition_keeps_the_tenant_id_as_the_key() -> None:
    assert partition_key("acme", new_event_id(), 1) == "acme"
    assert partition_key("acme", new_event_id()) == "acme"
    assert read_keys("acme", 1) == ["acme"]


def test_the_index_is_the_documented_hash() -> None:
    # docs/architecture.md §5: first 8 bytes of SHA-256 of the UTF-8 event id, big-endian, mod N.
    event_id = "0193a5f4-7c2e-7b1a-9f00-000000000001"
    expected = int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big") % 4
    assert partition_index(event_id, 4) == expected
    assert partition_key("acme", event_id, 4) == f"acme#{expected}"


def test_the_index_of_a_known_id_is_pinned() -> None:
    # A change to the hash would move every partitioned tenant's items: pinned on fixed values.
    # sha256(b"a") starts ca978112ca1bbdca: 0xca978112ca1bbdca mod 2, 3, 4, 7, 64.
    assert [partition_index("a", n) for n in (2, 3, 4, 7, 64)] == [0, 1, 2, 4, 10]
    assert int("ca978112ca1bbdca", 16) % 64 == 10
    event_id = "0193a5f4-7c2e-7b1a-9f00-000000000001"
    assert [partition_key("acme", event_id, n) for n in (1, 2, 3, 4, 7, 64)] == [
        "acme",
        "acme#1",
        "acme#1",
        "acme#1",
        "acme#2",
        "acme#1",
    ]


@given(tenants, event_ids, counts)
def test_every_key_is_the_tenants_own_and_among_what_readers_query(
    tenant: str, event_id: str, n: int
) -> None:
    key = partition_key(tenant, event_id, n)
    assert owns_key(tenant, key)
    assert tenant_of_key(key) == tenant
    assert key in read_keys(tenant, n)
    # Raising N later never hides it: every larger N's readers query it too.
    assert all(key in read_keys(tenant, m) for m in range(n, MAX_PARTITIONS + 1))
    assert key in lookup_keys(tenant, event_id, MAX_PARTITIONS)


@given(tenants, tenants, st.integers(min_value=0, max_value=MAX_PARTITIONS - 1))
def test_no_tenant_owns_another_tenants_keys(a: str, b: str, k: int) -> None:
    if a != b:
        assert not owns_key(a, b)
        assert not owns_key(a, f"{b}#{k}")


def test_owns_key_refuses_anything_but_the_tenant_and_its_digits() -> None:
    assert owns_key("ab", "ab") and owns_key("ab", "ab#0") and owns_key("ab", "ab#63")
    for key in ("abc", "abc#1", "ab#", "ab#x", "ab#1#2", "ab#-1", "ab#64", "ab#\u0661", "a", "ab# 1"):
        assert not owns_key("ab", key), key
    assert not owns_key("a#b", "a#b")  # not a valid tenant id


@pytest.mark.parametrize(
    "value", [0, -1, MAX_PARTITIONS + 1, "x", "", "1.5", "1e3", True, 2.0, None, "\u0663"]
)
def test_parse_partitions_refuses_what_is_not_1_to_max(value: Any) -> None:
    with pytest.raises(InvalidPartitions):
        parse_partitions(value)


def test_parse_partitions_takes_ints_and_their_text() -> None:
    assert parse_partitions(4) == 4 and parse_partitions("4") == 4 and parse_partitions(" 64 ") == 64


def test_effective_partitions_is_the_larger_of_override_and_default() -> None:
    assert effective_partitions(None, 1) == 1
    assert effective_partitions(4, 1) == 4
    assert effective_partitions(2, 8) == 8


def test_lookup_keys_are_every_key_the_id_had_under_each_n() -> None:
    event_id = new_event_id()
    keys = lookup_keys("acme", event_id, 4)
    assert keys[0] == "acme"
    assert set(keys) == {partition_key("acme", event_id, m) for m in range(1, 5)}
    assert len(keys) == len(set(keys)) <= 4


def _sources(rng: random.Random, ids: list[str], n: int, newest_first: bool) -> list[list[dict[str, Any]]]:
    by_key: dict[str, list[dict[str, Any]]] = {k: [] for k in read_keys("acme", n)}
    for event_id in ids:
        m = rng.randint(1, n)  # written under some N' <= N
        by_key[partition_key("acme", event_id, m)].append({"event_id": {"S": event_id}})
    return [
        sorted(items, key=lambda i: i["event_id"]["S"], reverse=newest_first) for items in by_key.values()
    ]


@given(st.lists(st.uuids().map(str), unique=True, max_size=60), counts, st.booleans(), st.randoms())
def test_merge_gives_every_item_once_in_sort_key_order(
    ids: list[str], n: int, newest_first: bool, rng: random.Random
) -> None:
    merged = [
        i["event_id"]["S"]
        for i in merge_by_sort_key(_sources(rng, ids, n, newest_first), newest_first=newest_first)
    ]
    assert merged == sorted(ids, reverse=newest_first)


def test_merge_yields_a_record_stored_under_two_keys_once() -> None:
    a = [{"event_id": "3"}, {"event_id": "1"}]
    b = [{"event_id": "3"}, {"event_id": "2"}]
    assert [i["event_id"] for i in merge_by_sort_key([a, b])] == ["3", "2", "1"]


def test_merge_reads_a_source_only_as_far_as_needed() -> None:
    pulled: list[str] = []

    def source(prefix: str) -> Any:
        for i in range(9, -1, -1):
            pulled.append(f"{prefix}{i}")
            yield {"event_id": f"{prefix}{i}"}

    merged = merge_by_sort_key([source("a"), source("b")])
    first = [next(merged)["event_id"] for _ in range(3)]
    assert first == ["b9", "b8", "b7"]
    assert len(pulled) <= 5


# --- the worker's item keys --------------------------------------------------------------------


def _body(**overrides: Any) -> str:
    env = {
        "v": 1,
        "kind": "event",
        "tenant_id": "acme",
        "event_id": new_event_id(),
        "received_at": "2026-11-22T10:15:30.123456Z",
        "source": {"route": "POST /events"},
        "payload": {"n": 1},
    }
    env.update(overrides)
    return envelope.dumps(env)


def _prepare(body: str, partitions: object = None) -> Any:
    return prepare_record(
        body, REDACTOR, retention_days=0, stored_at="2026-11-22T10:15:31Z", partitions=partitions
    )


def test_an_unstamped_message_is_stored_under_the_tenant_id_as_before() -> None:
    prepared = _prepare(_body())
    assert prepared.key[0] == "acme" and prepared.item["tenant_id"] == "acme"


def test_a_stamped_message_is_stored_under_its_partition_and_read_back_as_its_tenant() -> None:
    body = _body()
    prepared = _prepare(body, "4")
    event_id = prepared.key[1]
    assert prepared.key[0] == partition_key("acme", event_id, 4) == prepared.item["tenant_id"]
    assert stored_record(prepared.item)["tenant_id"] == "acme"
    # The same message again (a redelivery) takes the same key.
    assert _prepare(body, "4").key == prepared.key


@pytest.mark.parametrize("attribute", ["0", "65", "-1", "x", "", "4; other", "1e3", "other#1"])
def test_a_malformed_partitions_attribute_is_a_permanent_failure(attribute: str) -> None:
    with pytest.raises(PermanentError) as caught:
        _prepare(_body(), attribute)
    assert caught.value.code == "invalid_partitions"


@pytest.mark.parametrize("tenant", ["acme#1", "other#0", "acme*", ""])
def test_an_envelope_cannot_name_a_key_as_its_tenant(tenant: str) -> None:
    with pytest.raises(PermanentError) as caught:
        _prepare(_body(tenant_id=tenant), "4")
    assert caught.value.code == "invalid_envelope"


@given(counts, st.builds(new_event_id))
def test_the_worker_writes_only_under_the_messages_own_tenant(n: int, event_id: str) -> None:
    prepared = _prepare(_body(tenant_id="ab", event_id=event_id), str(n))
    assert owns_key("ab", prepared.key[0]) and prepared.key[0] == prepared.item["tenant_id"]


# --- ingest: the stamp and its cache -----------------------------------------------------------


class Overrides:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.calls = 0
        self.down = False

    def partitions(self, tenant_id: str) -> int | None:
        self.calls += 1
        if self.down:
            raise QuotaStoreUnavailable("down")
        return self.values.get(tenant_id)


def test_ingest_reads_a_tenants_n_at_most_once_a_refresh_and_keeps_it_when_the_store_is_down() -> None:
    store, now = Overrides(), [0.0]
    resolve = TenantPartitions(1, store, clock=lambda: now[0], refresh_seconds=60)
    assert resolve("acme") == 1
    store.values["acme"] = 4
    assert resolve("acme") == 1 and store.calls == 1  # cached
    now[0] = 61
    assert resolve("acme") == 4 and store.calls == 2
    store.down, now[0] = True, 130
    assert resolve("acme") == 4 and resolve.store_errors == 1  # the last N seen, never a lower one
    assert resolve("new") == 1  # no N seen: the default, a key every reader queries


def test_ingest_applies_the_default_when_it_is_larger_than_the_override() -> None:
    store = Overrides()
    store.values["acme"] = 2
    assert TenantPartitions(8, store)("acme") == 8
    assert TenantPartitions(3)("anyone") == 3


def test_the_sqs_message_carries_n_only_above_one() -> None:
    one = OutRecord("e1", "e1", "{}", 2, "acme")
    four = OutRecord("e2", "e2", "{}", 2, "acme", 4)
    assert sqs_message_attributes(one) == {} and sqs_message_bytes(one) == 2
    assert sqs_message_attributes(four) == {"partitions": {"DataType": "Number", "StringValue": "4"}}
    assert sqs_message_bytes(four) == 2 + len("partitions") + len("Number") + 1

    class Client:
        entries: list[dict[str, Any]] = []

        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.entries.extend(Entries)
            return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    from core.retry import Deadline

    client = Client()
    SqsPublisher("q", client=client).put_batch([one, four], Deadline(5))
    assert "MessageAttributes" not in client.entries[0]
    assert client.entries[1]["MessageAttributes"]["partitions"]["StringValue"] == "4"

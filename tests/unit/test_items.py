"""Item building, write planning and UnprocessedItems mapping: pure, no AWS."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest

from consumers.worker.items import (
    ITEM_BYTES_BUDGET,
    MAX_NATIVE_DEPTH,
    NotNative,
    PreparedItem,
    build_item,
    failures_by_record_id,
    plan_writes,
    prepare_record,
    stored_record,
    to_dynamo,
    unprocessed_item_keys,
    write_units,
)
from core import envelope, redaction
from core.errors import PermanentError

R = redaction.load()
STORED_AT = "2026-11-22T10:15:31.000000Z"


def env(**overrides: Any) -> dict[str, Any]:
    doc = {
        "v": 1,
        "kind": "event",
        "tenant_id": "acme",
        "event_id": "0193a5f0-0000-7000-8000-000000000001",
        "received_at": "2026-11-22T10:15:30.123456Z",
        "type": "issues.opened",
        "source": {"route": "POST /events", "ip": "203.0.113.7"},
        "payload": {"a": 1},
    }
    doc.update(overrides)
    return doc


def build(doc: dict[str, Any], retention_days: int = 30) -> PreparedItem:
    return build_item(doc, R, retention_days=retention_days, stored_at=STORED_AT)


def nested(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        doc = {"n": doc}
    return doc


def test_floats_become_decimal_and_big_numbers_keep_their_digits() -> None:
    item = build(env(payload={"f": 0.1, "i": 10**20, "neg": -2.5e-7, "b": True, "z": None})).item
    assert item["payload"] == {
        "f": Decimal("0.1"),
        "i": Decimal(10**20),
        "neg": Decimal("-2.5E-7"),
        "b": True,
        "z": None,
    }
    assert item["storage"] == "native"


@pytest.mark.parametrize(
    "payload",
    [
        {"x": 1.7e308},  # beyond DynamoDB's exponent range
        {"x": 1e-200},
        {"x": 123456789012345678901234567890123456789},  # 39 significant digits
        {"": "empty map key"},
        nested(MAX_NATIVE_DEPTH + 1),
        nested(64),  # the deepest an envelope may be
    ],
)
def test_bodies_dynamodb_cannot_hold_natively_are_stored_as_json(payload: dict[str, Any]) -> None:
    prepared = build(env(payload=payload))
    assert prepared.storage == "json"
    assert "payload" not in prepared.item
    assert json.loads(prepared.item["payload_json"]) == payload  # exact, even the 39-digit integer


def test_depth_limit_boundary() -> None:
    assert build(env(payload=nested(MAX_NATIVE_DEPTH - 1))).storage == "native"
    with pytest.raises(NotNative):
        to_dynamo({"payload": nested(MAX_NATIVE_DEPTH)})


def test_log_items_carry_text_level_and_attributes_not_payload() -> None:
    doc = env(
        kind="log", type=None, text="user bob@example.com logged in", level="info", attributes={"k": 1.5}
    )
    del doc["payload"]
    item = build(doc).item
    assert item["text"] == "user [REDACTED:email] logged in"
    assert item["level"] == "info"
    assert item["attributes"] == {"k": Decimal("1.5")}
    assert "type" not in item
    assert "payload" not in item


def test_deep_log_attributes_go_to_attributes_json() -> None:
    doc = env(kind="log", text="x", attributes=nested(40))
    del doc["payload"]
    prepared = build(doc)
    assert prepared.storage == "json"
    assert prepared.item["text"] == "x"
    assert orjson.loads(prepared.item["attributes_json"]) == nested(40)


def test_ttl_from_received_at_and_none_when_retention_is_zero() -> None:
    assert build(env()).item["expires_at"] == Decimal(1795342530 + 7 * 86400) - 7 * 86400 + 30 * 86400
    assert "expires_at" not in build(env(), retention_days=0).item


def test_redaction_reaches_payload_source_and_client_and_counts_per_rule() -> None:
    doc = env(
        payload={"user": {"email": "a@b.com", "password": "x"}, "note": "card 4111111111111111"},
        source={"route": "POST /events", "user_agent": "bot (contact ops@example.org)"},
        client={"event_id": "sent-by-c@d.io"},
    )
    prepared = build(doc)
    assert prepared.item["payload"] == {
        "user": {"email": "[REDACTED:email]", "password": "[REDACTED:credential]"},
        "note": "card [REDACTED:card]",
    }
    assert prepared.item["source"]["user_agent"] == "bot (contact [REDACTED:email])"
    assert prepared.item["client"]["event_id"] == "[REDACTED:email]"  # '-' is valid in a local part
    assert prepared.redactions == {"email": 3, "credential_field": 1, "card": 1}
    assert prepared.key == ("acme", doc["event_id"])


def test_an_item_over_400kb_as_a_native_map_falls_back_to_json_then_gzip() -> None:
    # A list of small numbers: 2 bytes each in JSON, 3 as a DynamoDB list element: 280 KB -> 420 KB.
    many_zeros = {"zeros": [0] * 140_000}
    prepared = build(env(payload=many_zeros))
    assert prepared.storage == "json"
    big_text = {"blob": "".join(f"line {i} of a very repetitive log\n" for i in range(20_000))}
    prepared = build(env(payload=big_text))
    assert prepared.storage == "gzip"
    assert orjson.loads(gzip.decompress(prepared.item["body_gz"])) == {"payload": big_text}
    assert len(prepared.item["body_gz"]) < ITEM_BYTES_BUDGET


def test_an_incompressible_giant_body_is_a_permanent_failure() -> None:
    import os

    noise = {"blob": os.urandom(600_000).hex()}
    with pytest.raises(PermanentError) as info:
        build(env(payload=noise))
    assert info.value.code == "item_too_large"


@pytest.mark.parametrize(
    ("body", "code"),
    [("not json", "not_json"), ("[]", "invalid_envelope"), ('{"v": 2}', "invalid_envelope")],
)
def test_prepare_record_classifies_bad_bodies_without_echoing_them(body: str, code: str) -> None:
    with pytest.raises(PermanentError) as info:
        prepare_record(body, R, retention_days=1, stored_at=STORED_AT)
    assert info.value.code == code


def test_prepare_record_accepts_a_dumped_envelope() -> None:
    prepared = prepare_record(envelope.dumps(env()), R, retention_days=1, stored_at=STORED_AT)
    assert prepared.item["stored_at"] == STORED_AT


# --- planning writes --------------------------------------------------------------------------------


def prepared(event_id: str, marker: str = "") -> PreparedItem:
    return PreparedItem(
        ("acme", event_id), {"tenant_id": "acme", "event_id": event_id, "m": marker}, "native", {}
    )


def test_plan_writes_dedupes_keys_last_item_wins_and_all_ids_share_the_outcome() -> None:
    units = plan_writes(
        [("m1", prepared("e1", "first")), ("m2", prepared("e2")), ("m3", prepared("e1", "second"))]
    )
    assert [u.key for u in units] == [("acme", "e1"), ("acme", "e2")]
    assert units[0].item["m"] == "second"
    assert units[0].record_ids == ("m1", "m3")
    failures = failures_by_record_id(units, {("acme", "e1"): "throttled"})
    assert list(failures) == ["m1", "m3"]
    assert failures == {"m1": "throttled", "m3": "throttled"}


def test_unprocessed_items_map_back_to_keys() -> None:
    response = {
        "UnprocessedItems": {
            "events": [
                {
                    "PutRequest": {
                        "Item": {"tenant_id": {"S": "acme"}, "event_id": {"S": "e7"}, "x": {"N": "1"}}
                    }
                },
                {"PutRequest": {"Item": {"tenant_id": {"S": "globex"}, "event_id": {"S": "e9"}}}},
            ]
        }
    }
    assert unprocessed_item_keys(response, "events") == [("acme", "e7"), ("globex", "e9")]
    assert unprocessed_item_keys({"UnprocessedItems": {}}, "events") == []


def _event_of_about(nbytes: int) -> dict[str, Any]:
    # Realistic analytics-ish fields, repetitive enough to compress as real JSON does.
    fields = {f"prop_{i}": f"value-{i % 7}-{'x' * 20}" for i in range(nbytes // 40)}
    return env(payload={"type": "page_view", **fields})


def item_bytes(prepared: PreparedItem) -> int:
    return len(
        orjson.dumps(prepared.item, default=lambda o: o.decode("latin-1") if isinstance(o, bytes) else str(o))
    )


def test_compact_storage_gzips_a_body_when_that_saves_write_units() -> None:
    # GIVEN a ~1 KB event: natively its item is over 1 KB (2 WRU)
    doc = _event_of_about(1024)
    native = build_item(doc, R, retention_days=30, stored_at=STORED_AT)
    assert native.storage == "native"
    assert write_units(item_bytes(native)) >= 2
    # WHEN it is built compact THEN the body is gzipped and the item fits one write unit
    compact = build_item(doc, R, retention_days=30, stored_at=STORED_AT, compact=True)
    assert compact.storage == "gzip"
    assert write_units(item_bytes(compact)) == 1
    # AND the gzipped body is exactly the native body
    assert orjson.loads(gzip.decompress(compact.item["body_gz"]))["payload"] == doc["payload"]


def test_compact_storage_keeps_small_items_native() -> None:
    small = build_item(
        env(payload={"type": "click", "x": 1}), R, retention_days=30, stored_at=STORED_AT, compact=True
    )
    assert small.storage == "native"
    assert "payload" in small.item


def _log(**fields: Any) -> dict[str, Any]:
    doc = env(kind="log", **fields)
    del doc["payload"], doc["type"]  # a stored item leaves out what the envelope leaves empty
    return doc


@pytest.mark.parametrize(
    ("doc", "compact", "storage"),
    [
        (
            env(payload={"a": 1, "f": 0.5, "big": 10**20, "l": [1, "x", None, True], "m": {"n": -2.5e-7}}),
            False,
            "native",
        ),
        (_log(text="user logged in", level="info", attributes={"k": 1.5, "n": 3}), False, "native"),
        (env(payload={"x": 1e-200}), False, "json"),
        (env(payload={"x": 123456789012345678901234567890123456789}), False, "json"),
        (env(payload=nested(MAX_NATIVE_DEPTH + 1)), False, "json"),
        (env(payload={"": "empty map key"}), False, "json"),
        (_log(text="x", attributes=nested(40)), False, "json"),
        (env(payload={"zeros": [0] * 140_000}), False, "json"),
        (
            env(payload={"blob": "".join(f"line {i} of a very repetitive log\n" for i in range(20_000))}),
            False,
            "gzip",
        ),
        (_event_of_about(1024), True, "gzip"),
        (_log(text="y" * 3000, level="warn", attributes={"k": [1, 2.5]}), True, "gzip"),
    ],
)
def test_stored_record_reads_every_storage_form_back(
    doc: dict[str, Any], compact: bool, storage: str
) -> None:
    # GIVEN an envelope the redactor leaves unchanged, stored in the given form
    prepared = build_item(doc, R, retention_days=30, stored_at=STORED_AT, compact=compact)
    assert prepared.storage == storage
    # WHEN the item is read back, as plain values and as the DynamoDB API returns it
    from consumers.worker.store import deserialize_item, serialize_item

    for item in (prepared.item, deserialize_item(serialize_item(prepared.item))):
        record = stored_record(item)
        # THEN it is the envelope again, plus how and when it was stored, with no Decimal left
        assert record == {
            **doc,
            "stored_at": STORED_AT,
            "expires_at": prepared.item["expires_at"],
            "storage": storage,
        }
        assert not any(field in record for field in ("payload_json", "attributes_json", "body_gz"))
        assert "Decimal" not in repr(record)


def test_compact_storage_does_not_compress_when_the_head_alone_keeps_the_units(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an item over 1 KB whose head (a long user agent) is already over 1 KB
    doc = env(payload={"k": "v" * 120})
    doc["source"]["user_agent"] = "a" * 1000

    def compress(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("compressed although no gzip stream could save a write unit")

    monkeypatch.setattr(gzip, "compress", compress)
    # WHEN it is built compact THEN it stays native, decided without compressing
    item = build_item(doc, R, retention_days=30, stored_at=STORED_AT, compact=True)
    assert item.storage == "native"
    assert write_units(item_bytes(item)) == 2

"""Items become schema-valid envelopes with the right tenant, ids, type and metadata."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import envelope as env
from ingest import normalize as normalize_module
from ingest.normalize import (
    ItemRejected,
    RequestFacts,
    build_decoded_envelope,
    build_envelope,
    depth_exceeds,
    detect_level,
    normalize,
)
from ingest.problems import Problem
from ingest.protocols.records import DecodedRecord
from tests.support.fakes import parse_envelope

SCHEMA = orjson.loads(env.SCHEMA_PATH.read_bytes())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
FACTS = RequestFacts(
    route="POST /events",
    kind="event",
    received_at="2026-11-22T10:15:30.123456Z",
    default_tenant="default",
    ip="203.0.113.7",
    user_agent="GitHub-Hookshot/abc",
    request_id="req-1",
)
LOG_FACTS = replace(FACTS, route="POST /ingest", kind="log")
SOURCE = {"route": "POST /events", "ip": None, "user_agent": None, "request_id": None}


def build(item: object, facts: RequestFacts = FACTS, index: int = 0) -> dict[str, object]:
    record = build_envelope(item, index, facts, {**SOURCE, "route": facts.route})
    VALIDATOR.validate(record)  # every envelope built in these tests is checked against the published schema
    env.validate(record)  # and against the compiled validator the consumers use
    return record


def test_event_envelope_carries_the_payload_unchanged() -> None:
    payload = {"type": "signup", "user": {"id": 1, "tags": ["a"]}, "tenant_id": "default"}
    record = build(payload)
    assert record["payload"] == payload
    assert (record["v"], record["kind"], record["tenant_id"], record["type"]) == (
        1,
        "event",
        "default",
        "signup",
    )
    assert uuid.UUID(str(record["event_id"])).version == 7


def test_github_event_type_combines_header_and_action() -> None:
    facts = replace(FACTS, event_type="issues", delivery_id="d-1")
    assert build({"action": "opened"}, facts)["type"] == "issues.opened"
    assert build({"zen": "keep it simple"}, replace(facts, event_type="ping"))["type"] == "ping"


def test_client_identity_gives_deterministic_ids() -> None:
    # The record's own id, the Idempotency-Key (+ position) and the delivery id (+ position) each fix the id.
    first = build({"event_id": "abc"})
    again = build({"event_id": "abc"})
    assert first["event_id"] == again["event_id"]
    assert first["client"] == {"event_id": "abc"}
    keyed = replace(FACTS, idempotency_key="key-1")
    assert (
        build({}, keyed, 3)["event_id"] == build({}, keyed, 3)["event_id"] != build({}, keyed, 4)["event_id"]
    )
    delivered = replace(FACTS, delivery_id="72d3162e")
    assert build({}, delivered)["client"] == {"event_id": "72d3162e#0"}
    assert uuid.UUID(str(build({}, delivered)["event_id"])).version == 5


def test_client_ids_sharing_their_first_512_characters_give_different_ids() -> None:
    # GIVEN two client ids equal in their first 512 characters (the length of the stored copy)
    prefix = "p" * 512
    a, b = build({"event_id": prefix + "a"}), build({"event_id": prefix + "b"})
    logs = [build({"log_id": prefix + tail, "text": "t"}, LOG_FACTS) for tail in "ab"]
    # THEN the whole id is hashed: each gives its own record id
    assert a["event_id"] != b["event_id"] and logs[0]["event_id"] != logs[1]["event_id"]
    # and ids up to 512 characters derive exactly as they always did (stored records still match retries)
    assert build({"event_id": prefix})["event_id"] == str(
        uuid.uuid5(uuid.UUID("6f2b8c3e-5d1a-4c57-9a0e-3b7e1f0d4a21"), f"default\x1fevent\x1f{prefix}")
    )
    assert a["client"] == {"event_id": prefix}


def test_same_client_id_in_two_tenants_or_kinds_gives_different_ids() -> None:
    a = build({"event_id": "x", "tenant_id": "a"})
    b = build({"event_id": "x", "tenant_id": "b"})
    log = build({"log_id": "x", "text": "t", "tenant_id": "a"}, LOG_FACTS)
    assert len({a["event_id"], b["event_id"], log["event_id"]}) == 3


def test_tenant_from_body_when_the_request_does_not_fix_it() -> None:
    assert build({"tenant_id": "acme"})["tenant_id"] == "acme"
    assert build({})["tenant_id"] == "default"


def test_body_naming_another_tenant_than_the_credential_is_403() -> None:
    facts = replace(FACTS, tenant_id="acme", tenant_from_credential=True)
    assert build({"tenant_id": "acme"}, facts)["tenant_id"] == "acme"
    with pytest.raises(Problem) as info:
        build({"tenant_id": "globex"}, facts)
    assert info.value.status == 403


def test_invalid_tenant_in_body_refuses_the_item() -> None:
    items = [(0, {"tenant_id": "../etc"}), (1, {"tenant_id": 5}), (2, {}), (3, {"tenant_id": "acme\n"})]
    result = normalize(items, FACTS, 256 * 1024, 64)
    assert [(e.index, e.code) for e in result.errors] == [
        (0, "invalid-tenant"),
        (1, "invalid-tenant"),
        (3, "invalid-tenant"),
    ]
    assert [i for i, *_ in result.accepted] == [2]


def test_client_timestamp_is_kept_as_a_hint() -> None:
    assert build({"timestamp": "2026-01-01T00:00:00Z"})["client"] == {"timestamp": "2026-01-01T00:00:00Z"}
    assert build({"ts": 1700000000.5})["client"] == {"timestamp": "1700000000.5"}


def test_log_line_becomes_text_with_detected_level() -> None:
    record = build("[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6", LOG_FACTS)
    assert record["kind"] == "log"
    assert record["level"] == "ERROR"
    assert "payload" not in record


def test_log_object_keeps_level_and_other_fields_as_attributes() -> None:
    record = build(
        {"message": "disk full", "severity": "warning", "host": "h1", "attributes": {"a": 1}}, LOG_FACTS
    )
    assert (record["text"], record["level"]) == ("disk full", "warning")
    assert record["attributes"] == {"a": 1, "host": "h1"}


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("081109 203615 148 INFO dfs.DataNode$PacketResponder: done", "INFO"),
        ("2015-07-29 19:04:29,071 - WARN  [SendWorker:188978561024]", "WARN"),
        ("kernel: warning: something", "WARN"),
        ("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster", None),
        ("INFORMATION is not a level", None),
        ("xERROR glued to a word", None),
        ("WARNINGS, plural, is no level", None),
        ("[error] Apache style", "ERROR"),
        ("crit: lower case counts", "CRITICAL"),
        ("ßINFO: a non-ASCII letter is no word boundary here", "INFO"),
        ("İNFO: only ASCII letters spell a level", None),
        ("€" * 150 + " ERROR past 200 bytes, within 200 characters", "ERROR"),
        ("x" * 200 + " ERROR past the first 200 characters", None),
    ],
)
def test_level_detection(line: str, level: str | None) -> None:
    assert detect_level(line) == level


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ([1, 2], "not-a-log"),
        (5, "not-a-log"),
        ({"text": 5}, "missing-text"),
        ({"level": "info"}, "missing-text"),
    ],
)
def test_unusable_log_items_are_refused(item: object, code: str) -> None:
    result = normalize([(0, item)], LOG_FACTS, 256 * 1024, 64)
    assert [(e.index, e.code) for e in result.errors] == [(0, code)]


@pytest.mark.parametrize("item", [[1], "text", 5, None])
def test_events_must_be_objects(item: object) -> None:
    assert normalize([(0, item)], FACTS, 256 * 1024, 64).errors[0].code == "not-an-object"


def test_record_over_the_size_limit_is_refused_alone() -> None:
    result = normalize([(0, {"blob": "x" * 2000}), (1, {"small": 1})], FACTS, 1024, 64)
    assert [(e.index, e.code) for e in result.errors] == [(0, "record-too-large")]
    assert [i for i, *_ in result.accepted] == [1]


def test_record_size_counts_utf8_bytes() -> None:
    # 400 characters but 1,200 bytes once encoded
    assert normalize([(0, {"s": "€" * 400})], FACTS, 1000, 64).errors[0].code == "record-too-large"


def test_serialized_envelope_is_safe_for_sqs() -> None:
    record = build({"s": "nul\x00 bell\x07 nonchar\ufffe\uffff end"})
    text = env.dumps(record)
    assert "\ufffe" not in text and "\uffff" not in text and "\x00" not in text
    assert parse_envelope(text)["payload"] == record["payload"]


def nested(depth: int) -> dict[str, object]:
    doc: dict[str, object] = {"leaf": True}
    for _ in range(depth - 1):
        doc = {"n": doc}
    return doc


@pytest.mark.parametrize("facts", [FACTS, LOG_FACTS], ids=["event", "log object"])
def test_nesting_at_the_limit_passes_and_beyond_is_refused_per_item(facts: RequestFacts) -> None:
    # GIVEN items nested exactly at the limit and one level past it (a log object needs a text field)
    at, past = nested(64), nested(65)
    if facts is LOG_FACTS:
        at["text"] = past["text"] = "line"
    # WHEN they are normalized in one request
    result = normalize([(0, at), (1, past), (2, {"text": "flat"})], facts, 256 * 1024, 64)
    # THEN only the one past the limit is refused, and its neighbours go on
    assert [(e.index, e.code) for e in result.errors] == [(1, "too-deep")]
    assert [i for i, *_ in result.accepted] == [0, 2]


def test_brackets_inside_strings_do_not_make_an_item_too_deep() -> None:
    # The bracket count on the serialized record is only a first screen: a flat item whose strings
    # are full of brackets is walked exactly, and passes.
    item = {"regex": "[" * 100 + "{" * 100, "list": [[1], [2]]}
    result = normalize([(0, item)], FACTS, 256 * 1024, 3)
    assert result.errors == [] and len(result.accepted) == 1


def test_nesting_beyond_what_the_serializer_allows_is_refused_per_item() -> None:
    # orjson parses 1,024 levels but serializes only 254: such an item is refused, not a 500.
    deep = orjson.loads(b"[" * 300 + b"]" * 300)
    result = normalize([(0, {"deep": deep}), (1, {"ok": True})], FACTS, 256 * 1024, 1000)
    assert [(e.index, e.code) for e in result.errors] == [(0, "too-deep")]
    assert [i for i, *_ in result.accepted] == [1]


def test_server_ids_are_made_in_one_batch_and_increase_in_request_order() -> None:
    # GIVEN a request mixing items with and without their own id
    items = [(0, {"a": 1}), (1, {"event_id": "mine"}), (2, {"b": 2}), (3, {"c": 3})]
    # WHEN normalized
    ids = [record["event_id"] for _, record, _, _ in normalize(items, FACTS, 256 * 1024, 64).accepted]
    # THEN server-assigned ids are UUIDv7s in request order, and the client's id is derived (v5)
    versions = [uuid.UUID(i).version for i in ids]
    assert versions == [7, 5, 7, 7]
    server = [i for i, v in zip(ids, versions, strict=True) if v == 7]
    assert server == sorted(server) and len(set(server)) == 3


def test_accepted_text_and_size_are_the_serialized_record() -> None:
    (_, record, text, size), *_ = normalize([(0, {"s": "é€"})], FACTS, 256 * 1024, 64).accepted
    assert orjson.loads(text) == record and size == len(text.encode())


# The recursive depth walk and its stack-walk fallback give exactly the answers of the definition.

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=40,
)


def reference_depth(value: Any) -> int:
    """Nesting depth by definition: a container is one level more than its deepest child container."""
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES, st.integers(min_value=1, max_value=8))
def test_depth_exceeds_agrees_with_the_definition(value: Any, max_depth: int) -> None:
    # A scalar counts as level 1 only at the top (as the original traversal counted it).
    depth = reference_depth(value) if isinstance(value, dict | list) else 1
    assert depth_exceeds(value, max_depth) is (depth > max_depth)


def test_the_recursive_walk_and_the_stack_walk_agree_at_the_boundary(monkeypatch: Any) -> None:
    # GIVEN values nested exactly at, and one past, the limit
    limit = 50
    at_limit: Any = 0
    for _ in range(limit):
        at_limit = [at_limit]
    past = {"k": at_limit}
    for recursive_max in (10_000, 0):  # WHEN the fast recursive walk is used, then the stack walk
        monkeypatch.setattr(normalize_module, "_RECURSIVE_MAX_DEPTH", recursive_max)
        # THEN both draw the line in the same place
        assert not depth_exceeds(at_limit, limit)
        assert depth_exceeds(past, limit)


def test_a_limit_past_the_recursive_range_still_works_on_deep_values() -> None:
    value: Any = 0
    for _ in range(3000):  # deeper than Python's recursion limit
        value = [value]
    assert depth_exceeds(value, 2999)
    assert not depth_exceeds(value, 3000)


# --- records decoded by a protocol adapter (OTLP, Loki, stdlib forms) -----------------------------

OTLP_FACTS = replace(FACTS, route="POST /v1/logs", kind="log", protocol="otlp", content_identity=True)


def decoded(text: str = "disk full", nanos: tuple[int, ...] = (1, 2), **body: object) -> DecodedRecord:
    return DecodedRecord(kind="log", body={"text": text, **body}, timestamp="2025-12-01T12:00:00.000000Z",
                         nanos=nanos)  # fmt: skip


def build_decoded(
    record: DecodedRecord, facts: RequestFacts = OTLP_FACTS, index: int = 0
) -> dict[str, object]:
    envelope = build_decoded_envelope(
        record, index, facts, {**SOURCE, "route": facts.route, "protocol": facts.protocol}
    )
    VALIDATOR.validate(envelope)
    return parse_envelope(env.dumps(envelope))


def test_a_decoded_record_is_named_by_its_content_the_same_on_every_retry() -> None:
    first, again = build_decoded(decoded(), index=0), build_decoded(decoded(), index=7)
    assert first["event_id"] == again["event_id"]
    assert uuid.UUID(str(first["event_id"])).version == 5
    assert str(first["client"]["event_id"]).startswith("otlp:")  # type: ignore[index]
    # Anything that differs, down to the nanosecond as sent, is another record
    others = [decoded(text="disk fuller"), decoded(nanos=(1, 3)), decoded(level="ERROR"),
              decoded(attributes={"host": "a"})]  # fmt: skip
    assert len({build_decoded(r)["event_id"] for r in others} | {first["event_id"]}) == 5


def test_content_ids_are_namespaced_by_tenant() -> None:
    acme = build_decoded(decoded(), replace(OTLP_FACTS, tenant_id="acme"))
    globex = build_decoded(decoded(), replace(OTLP_FACTS, tenant_id="globex"))
    assert acme["event_id"] != globex["event_id"]


def test_without_content_identity_a_decoded_record_gets_a_server_id() -> None:
    record = build_decoded(decoded(), replace(OTLP_FACTS, protocol="form", content_identity=False))
    assert uuid.UUID(str(record["event_id"])).version == 7
    assert "client" not in record or "event_id" not in record["client"]  # type: ignore[operator]


def test_a_decoded_record_follows_the_native_log_rules() -> None:
    record = build_decoded(decoded(text="[error] disk full", attributes={"host": "a"}))
    assert (record["level"], record["attributes"], record["tenant_id"]) == ("ERROR", {"host": "a"}, "default")
    assert record["source"]["protocol"] == "otlp"  # type: ignore[index]
    assert record["client"]["timestamp"] == "2025-12-01T12:00:00.000000Z"  # type: ignore[index]
    with pytest.raises(ItemRejected):
        build_decoded_envelope(DecodedRecord(kind="event", body={}), 0, OTLP_FACTS, SOURCE)


def test_normalize_applies_the_same_limits_to_decoded_records() -> None:
    deep: object = "leaf"
    for _ in range(70):
        deep = [deep]
    items = [(0, decoded()), (1, decoded(attributes={"deep": deep})), (2, decoded(text="x" * 1200))]
    out = normalize(items, OTLP_FACTS, max_record_bytes=1000, max_depth=64, build=build_decoded_envelope)
    assert [i for i, *_ in out.accepted] == [0]
    assert [(e.index, e.code) for e in out.errors] == [(1, "too-deep"), (2, "record-too-large")]


# --- ingest-side redaction: redact_record and the envelope's one-walk redaction ------------------------


RULES = {
    "rules": [
        {
            "name": "email",
            "label": "email",
            "pattern": r"[\w.+-]+@[\w-]+\.[\w.]+",
            "prefilter": {"contains": ["@"]},
        }
    ],
    "secret_fields": {"names": ["password"], "label": "credential"},
}


def _redactor(**extra_fields: list[str]) -> Any:
    from core.redaction import compile_rules

    doc = {**RULES, "secret_fields": {**RULES["secret_fields"], **extra_fields}}  # type: ignore[dict-item]
    return compile_rules(doc, redact_ip_addresses=False)


def _per_field(record: dict[str, Any], redactor: Any) -> dict[str, Any]:
    counts: dict[str, int] = {}
    text = env.dumps(record)
    return {
        k: redactor.redact_value(v, counts, text) if k in env.REDACTED_FIELDS else v
        for k, v in record.items()
    }


def test_redact_envelope_walks_once_and_equals_redacting_each_field() -> None:
    record = build({"type": "mail a@b.io", "user": {"email": "a@b.io", "password": "x"}, "note": "c@d.io"})
    redactor = _redactor()
    redacted, counts = env.redact_envelope(record, redactor, env.dumps(record))
    assert redacted == _per_field(record, redactor)
    assert counts == {"email": 4, "credential_field": 1}  # the type, then in the payload: type, email, note
    assert redacted["event_id"] == record["event_id"] and redacted["received_at"] == record["received_at"]


def test_redact_envelope_never_blanks_a_whole_field_a_rules_file_calls_secret() -> None:
    # GIVEN a rules file whose secret field names include "source" and "payload"
    record = build({"type": "t", "who": "a@b.io"})
    redactor = _redactor(names=["password", "source", "payload"])
    redacted, _ = env.redact_envelope(record, redactor)
    # THEN the envelope's own fields are redacted inside, not replaced by a marker
    assert redacted["payload"] == {"type": "t", "who": "[REDACTED:email]"}
    assert redacted["source"] == record["source"]


def test_redact_record_reserializes_only_when_something_was_replaced() -> None:
    redactor = _redactor()
    clean = build({"type": "t"})
    text = env.dumps(clean)
    counts: dict[str, int] = {}
    assert normalize_module.redact_record(clean, text, redactor, counts) == (clean, text)
    dirty = build({"who": "a@b.io"})
    out, out_text = normalize_module.redact_record(dirty, env.dumps(dirty), redactor, counts)
    assert out_text == env.dumps(out) and "a@b.io" not in out_text
    assert counts == {"email": 1}


def test_normalize_redacts_before_the_size_check_and_counts_per_rule() -> None:
    items = [(0, {"who": "a@b.io"}), (1, {"who": "c@d.io", "password": "p"})]
    result = normalize(items, FACTS, 256 * 1024, 64, redactor=_redactor())
    assert result.redactions == {"email": 2, "credential_field": 1}
    assert all("@" not in text for _, _, text, _ in result.accepted)
    assert [size for *_, size in result.accepted] == [len(text.encode()) for _, _, text, _ in result.accepted]

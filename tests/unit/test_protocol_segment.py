"""The Segment HTTP Tracking API: the adapter alone, then the routes through the handler.

The golden batch follows the shape of the batch example in Segment's HTTP API documentation (a
track with properties and a messageId, an identify with traits), written for this test.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import IngestSettings
from ingest import handler, keyauth
from ingest.apikeys import generate_key
from ingest.protocols import segment, timestamps
from ingest.protocols.records import ProtocolError
from ingest.publish import SinkResult
from tests.support.fakes import LambdaContext, MemorySink, http_event, parse_envelope

KEY_A = generate_key()
KEY_B = generate_key()
REVOKED = generate_key()
GOLDEN = {
    "batch": [
        {
            "type": "track",
            "event": "Signed Up",
            "userId": "1043",
            "properties": {"plan": "Enterprise"},
            "messageId": "1ff51c9c-4929-45de-8914-3bb878be8c4a",
            "timestamp": "2024-03-01T10:20:30.123Z",
        },
        {
            "type": "identify",
            "userId": "532",
            "traits": {"email": "john@example.com"},
            "messageId": "6f5f436d-8534-4070-8023-d18f8b78ed39",
            "context": {"locale": "fr-FR"},
        },
    ],
    "context": {"library": {"name": "analytics-python", "version": "2.4.0"}, "locale": "en-US"},
    "integrations": {"All": True},
    "sentAt": "2024-03-01T10:20:31Z",
    "writeKey": "slk_secret-write-key",
}

PLAIN = {name: value for name, value in GOLDEN.items() if name != "writeKey"}


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- the adapter --------------------------------------------------------------------------------


def test_a_batch_gives_one_record_per_message_with_the_batch_context_merged() -> None:
    decoded = segment.decode(orjson.dumps(GOLDEN))
    assert decoded.errors == []
    track, identify = decoded.records
    assert (track.kind, track.event_type, track.client_id) == (
        "event",
        "track:Signed Up",
        GOLDEN["batch"][0]["messageId"],
    )  # type: ignore[index]
    assert track.timestamp == "2024-03-01T10:20:30.123000Z"
    assert track.body["properties"] == {"plan": "Enterprise"}
    assert track.body["context"] == GOLDEN["context"]
    assert track.body["integrations"] == {"All": True}
    assert track.body["sentAt"] == "2024-03-01T10:20:31Z"
    assert (identify.event_type, identify.timestamp) == ("identify", None)
    # the message's own context keys win over the batch's
    assert identify.body["context"] == {
        "library": {"name": "analytics-python", "version": "2.4.0"},
        "locale": "fr-FR",
    }
    assert all("writeKey" not in r.body for r in decoded.records)
    assert b"slk_secret" not in orjson.dumps([r.body for r in decoded.records])


def test_a_single_call_takes_its_type_from_the_path() -> None:
    decoded = segment.decode(b'{"userId": "u1", "name": "Home", "writeKey": "k"}', "page")
    (record,) = decoded.records
    assert (record.event_type, record.body["type"], "writeKey" in record.body) == ("page", "page", False)
    wrong = segment.decode(b'{"type": "track", "event": "x", "userId": "u1"}', "identify")
    assert [e.code for e in wrong.errors] == ["invalid-type"]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (5, "not-an-object"),
        ({"type": "purchase", "userId": "u"}, "invalid-type"),
        ({"userId": "u"}, "invalid-type"),
        ({"type": {}, "userId": "u"}, "invalid-type"),
        ({"type": ["track"], "event": "x", "userId": "u"}, "invalid-type"),
        ({"type": "track", "userId": "u"}, "missing-event"),
        ({"type": "track", "event": "", "userId": "u"}, "missing-event"),
        ({"type": "identify"}, "missing-identity"),
        ({"type": "identify", "userId": "", "anonymousId": None}, "missing-identity"),
        ({"type": "identify", "userId": "u", "messageId": {"a": 1}}, "invalid-message-id"),
        ({"type": "identify", "userId": "u", "messageId": "x" * 257}, "invalid-message-id"),
        (
            {"type": "track", "event": "big", "userId": "u", "properties": {"p": "x" * 33_000}},
            "record-too-large",
        ),
    ],
)
def test_bad_messages_are_refused_alone(message: Any, code: str) -> None:
    good = {"type": "alias", "userId": "u2", "previousId": "u1", "messageId": "m-1"}
    decoded = segment.decode(orjson.dumps({"batch": [good, message, good]}))
    assert [(e.index, e.code) for e in decoded.errors] == [(1, code)]
    assert [r.event_type for r in decoded.records] == ["alias", "alias"]


def test_a_numeric_message_id_is_kept_as_text() -> None:
    (record,) = segment.decode(b'{"batch": [{"type": "identify", "userId": "u", "messageId": 42}]}').records
    assert record.client_id == "42"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "invalid-json"),
        (b"[1, 2]", 400, "invalid-json"),
        (b'{"batch": {}}', 400, "invalid-batch"),
        (b'{"batch": [], "pad": "' + b"x" * (500 * 1024) + b'"}', 413, "body-too-large"),
    ],
)
def test_unreadable_requests_are_refused_whole(body: bytes, status: int, code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        segment.decode(body)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_the_body_write_key_is_read_from_the_same_parse() -> None:
    assert segment.decode_with_key(b'{"writeKey": "k1", "batch": []}')[1] == "k1"
    assert segment.decode_with_key(b'{"writeKey": 5, "batch": []}')[1] is None
    assert segment.decode_with_key(b'{"writeKey": "", "batch": []}')[1] is None
    assert segment.decode_with_key(b'{"writeKey": "k2", "userId": "u", "event": "e"}', "track")[1] == "k2"


@given(st.binary(max_size=512))
def test_any_bytes_decode_or_raise_a_client_error(body: bytes) -> None:
    status = 200
    try:
        segment.decode(body)
    except ProtocolError as exc:
        status = exc.status
    assert 200 <= status < 500


# --- the routes ---------------------------------------------------------------------------------


class Stack:
    def __init__(self, auth: bool) -> None:
        self.sqs, self.kinesis = MemorySink("sqs"), MemorySink("kinesis", batch_size=500)
        env = {
            "QUEUE_URL": "q",
            "STREAM_NAME": "s",
            "MAX_RECORDS": "500",
            **({"AUTH_MODE": "api_key"} if auth else {}),
        }
        from ingest.service import IngestService

        self.service = IngestService(IngestSettings.from_env(env), [self.sqs, self.kinesis])

    def stored(self) -> list[dict[str, Any]]:
        assert set(self.sqs.records) == set(self.kinesis.records)
        return [parse_envelope(text) for text in self.sqs.records.values()]


class FakeStore:
    def __init__(self) -> None:
        self.tenants = {KEY_A: "tenant-a", KEY_B: "tenant-b"}
        self.calls = 0
        self.down = False

    def lookup(self, key: str) -> str | None:
        self.calls += 1
        if self.down:
            raise ConnectionError("store unreachable")
        return self.tenants.get(key)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(keyauth, "key_cache", lambda: keyauth.KeyCache(fake.lookup))
    return fake


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, store: FakeStore) -> Iterator[Stack]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    s = Stack(auth=True)
    monkeypatch.setattr(handler, "service", lambda: s.service)
    yield s


def call(
    route: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = handler.lambda_handler(http_event(route, data, headers), LambdaContext())
    raw = response.get("body") or ""
    text = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    return (
        response["statusCode"],
        orjson.loads(text),
        {k.lower(): v for k, v in (response.get("headers") or {}).items()},
    )


def test_a_batch_is_stored_under_the_write_keys_tenant_without_the_key(stack: Stack) -> None:
    golden = {**GOLDEN, "writeKey": KEY_A}
    status, body, _ = call("POST /v1/batch", gzip.compress(orjson.dumps(golden)),
                           {"authorization": basic(KEY_A), "content-encoding": "gzip"})  # fmt: skip
    assert (status, body) == (200, {"success": True})
    stored = sorted(stack.stored(), key=lambda r: r["type"])
    assert [r["type"] for r in stored] == ["identify", "track:Signed Up"]
    assert {r["tenant_id"] for r in stored} == {"tenant-a"}
    assert {r["source"]["protocol"] for r in stored} == {"segment"}
    assert {r["source"]["route"] for r in stored} == {"POST /v1/batch"}
    assert stored[1]["client"]["event_id"] == GOLDEN["batch"][0]["messageId"]  # type: ignore[index]
    assert KEY_A not in str(stack.sqs.records) and "writeKey" not in str(stack.sqs.records)


def test_a_batch_sent_again_maps_to_the_same_event_ids(stack: Stack) -> None:
    headers = {"authorization": basic(KEY_A)}
    call("POST /v1/batch", PLAIN, headers)
    first = set(stack.sqs.records)
    call("POST /v1/batch", {**PLAIN, "sentAt": "2024-03-01T10:25:00Z"}, headers)
    assert set(stack.sqs.records) == first and len(first) == 2


def test_the_write_key_in_the_body_alone_authenticates(stack: Stack) -> None:
    status, _, _ = call("POST /v1/track", {"writeKey": KEY_B, "event": "Clicked", "anonymousId": "a1"})
    assert status == 200
    (record,) = stack.stored()
    assert (record["tenant_id"], record["type"]) == ("tenant-b", "track:Clicked")
    assert KEY_B not in str(stack.sqs.records)


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"batch": []}, {}, 401, "unauthorized"),
        ({"batch": []}, {"authorization": basic(REVOKED)}, 401, "unauthorized"),
        ({"batch": [], "writeKey": "slk_" + "Z" * 43}, {}, 401, "unauthorized"),
        # a key of tenant A can never write into tenant B, through any field
        ({**GOLDEN, "writeKey": KEY_B}, {"authorization": basic(KEY_A)}, 403, "tenant-forbidden"),
        (PLAIN, {"authorization": basic(KEY_A), "x-tenant-id": "tenant-b"}, 403, "tenant-forbidden"),
    ],
)
def test_refusals_carry_the_code_and_message_the_sdks_read(
    stack: Stack, body: dict[str, Any], headers: dict[str, str], status: int, code: str
) -> None:
    got, answer, _ = call("POST /v1/batch", body, headers)
    assert (got, answer["code"], answer["success"]) == (status, code, False)
    assert isinstance(answer["message"], str) and answer["message"]
    assert stack.stored() == []


def test_body_fields_naming_another_tenant_are_only_payload(stack: Stack) -> None:
    message = {
        "type": "track",
        "event": "x",
        "userId": "u",
        "tenant_id": "tenant-b",
        "context": {"tenant_id": "tenant-b"},
    }
    assert (
        call(
            "POST /v1/batch", {"batch": [message], "tenant_id": "tenant-b"}, {"authorization": basic(KEY_A)}
        )[0]
        == 200
    )
    (record,) = stack.stored()
    assert record["tenant_id"] == "tenant-a"


def test_an_oversize_message_is_refused_alone_and_the_answer_is_still_200(stack: Stack) -> None:
    big = {"type": "track", "event": "big", "userId": "u", "properties": {"p": "x" * 40_000}}
    status, body, _ = call(
        "POST /v1/batch", {"batch": [GOLDEN["batch"][0], big]}, {"authorization": basic(KEY_A)}
    )  # type: ignore[index]
    assert (status, body["success"], body["rejected"]) == (200, True, 1)
    assert body["errors"][0]["code"] == "record-too-large"
    assert len(stack.stored()) == 1


def test_every_message_refused_is_a_4xx_the_sdks_do_not_retry(stack: Stack) -> None:
    status, body, _ = call("POST /v1/batch", {"batch": [{"type": "nope"}]}, {"authorization": basic(KEY_A)})
    assert 400 <= status < 500 and status != 429
    assert body["code"] == "all-items-invalid"


def test_a_store_that_cannot_answer_fails_closed_with_a_retryable_503(stack: Stack, store: FakeStore) -> None:
    store.down = True
    status, body, headers = call("POST /v1/batch", PLAIN, {"authorization": basic(KEY_A)})
    assert (status, body["code"], headers.get("retry-after")) == (503, "auth-unavailable", "2")
    assert stack.stored() == []


def test_a_publish_failure_is_a_retryable_5xx_in_segments_shape(
    monkeypatch: pytest.MonkeyPatch, store: FakeStore
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    s = Stack(auth=True)
    s.sqs.put_batch = lambda batch, deadline: SinkResult(
        failed={r.event_id: "ServiceUnavailable" for r in batch}
    )  # type: ignore[method-assign]
    monkeypatch.setattr(handler, "service", lambda: s.service)
    status, body, _ = call("POST /v1/batch", PLAIN, {"authorization": basic(KEY_A)})
    assert (status, body["code"]) == (503, "publish-incomplete") and body["message"]


def test_key_lookups_are_cached_per_container() -> None:
    store = FakeStore()
    clock = [0.0]
    cache = keyauth.KeyCache(store.lookup, ttl=10, clock=lambda: clock[0])
    assert [cache.tenant_for(KEY_A), cache.tenant_for(KEY_A), cache.tenant_for(REVOKED), cache.tenant_for(REVOKED)] == [
        "tenant-a", "tenant-a", None, None]  # fmt: skip
    assert store.calls == 2
    clock[0] = 11
    store.tenants.pop(KEY_A)
    assert cache.tenant_for(KEY_A) is None
    assert cache.tenant_for("not-a-key") is None and store.calls == 3


def test_without_api_keys_the_write_key_is_still_never_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    s = Stack(auth=False)
    monkeypatch.setattr(handler, "service", lambda: s.service)
    assert call("POST /v1/batch", PLAIN, {"authorization": basic(KEY_A)})[0] == 200
    assert len(s.stored()) == 2 and "slk_secret" not in str(s.sqs.records)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(body=st.binary(max_size=512), route=st.sampled_from(sorted(handler.SEGMENT_ROUTES)))
def test_any_bytes_on_the_segment_routes_give_2xx_or_4xx(stack: Stack, body: bytes, route: str) -> None:
    response = handler.lambda_handler(
        http_event(route, body, {"authorization": basic(KEY_A)}), LambdaContext()
    )
    assert response["statusCode"] < 500, response


# --- ISO 8601 times, as the analytics SDKs send them ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01T10:20:30.123456+00:00", "2026-12-01T10:20:30.123456Z"),
        ("2024-03-01T10:20:30.123Z", "2024-03-01T10:20:30.123000Z"),
        ("2024-03-01T10:20:30", "2024-03-01T10:20:30.000000Z"),
        ("2024-03-01T12:20:30.5+02:00", "2024-03-01T10:20:30.500000Z"),
        ("2024-03-01 10:20:30", "2024-03-01T10:20:30.000000Z"),
        ("2024-03-01", "2024-03-01T00:00:00.000000Z"),
        ("1969-12-31T23:59:59Z", None),
        ("2024-13-01T00:00:00Z", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("yesterday", None),
        (1709288430, None),
    ],
)
def test_iso_times_become_the_envelopes_utc_text(value: object, expected: str | None) -> None:
    assert timestamps.from_iso8601(value) == expected


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from([UTC, None]),
    )
)
def test_iso_times_round_trip_to_the_microsecond(moment: datetime) -> None:
    expected = moment.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert timestamps.from_iso8601(moment.isoformat()) == expected


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
MESSAGE_FIELDS = ("type", "event", "userId", "anonymousId", "messageId", "timestamp", "properties", "context",
                  "integrations", "traits", "writeKey", "tenant_id")  # fmt: skip
MESSAGES = st.dictionaries(
    st.sampled_from(MESSAGE_FIELDS), JSON_VALUES | st.sampled_from(sorted(segment.TYPES))
)


BATCHES = st.fixed_dictionaries(
    {"batch": st.lists(MESSAGES | JSON_VALUES, max_size=4)},
    optional={name: JSON_VALUES for name in ("context", "integrations", "sentAt", "writeKey", "tenant_id")},
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    route_document=st.tuples(st.just("POST /v1/batch"), BATCHES)
    | st.tuples(st.sampled_from(sorted(handler.SEGMENT_ROUTES - {"POST /v1/batch"})), MESSAGES)
)
def test_any_json_of_segments_shape_gives_2xx_or_4xx(stack: Stack, route_document: tuple[str, Any]) -> None:
    route, document = route_document
    body = orjson.dumps(document)
    response = handler.lambda_handler(
        http_event(route, body, {"authorization": basic(KEY_A)}), LambdaContext()
    )
    assert response["statusCode"] < 500, (response, body)

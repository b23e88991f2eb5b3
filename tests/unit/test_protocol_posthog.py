"""PostHog capture: the lz-string decoder, the adapter alone, then the routes through the handler.

The payloads follow the shapes of the examples in PostHog's capture API documentation (a batch with
``api_key``, a single event with ``properties.distinct_id``), written for these tests; the lz64
vectors are the JavaScript original's output (tests/fixtures/protocols/lz64.json).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import urllib.parse
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import IngestSettings
from ingest import handler, keyauth
from ingest.apikeys import generate_key
from ingest.protocols import posthog
from ingest.protocols.lzstring import LzStringError, decompress_from_base64
from ingest.protocols.records import ProtocolError
from tests.conftest import REPO
from tests.support.fakes import LambdaContext, MemorySink, http_event, parse_envelope

KEY_A = generate_key()
KEY_B = generate_key()
VECTORS = orjson.loads((REPO / "tests/fixtures/protocols/lz64.json").read_bytes())
UUID_1 = "0190f3a2-5c1e-7b3a-9f1e-2b3c4d5e6f70"
UUID_2 = "0190f3a2-5c1e-7b3a-9f1e-2b3c4d5e6f71"


def batch(key: str = KEY_A) -> dict[str, Any]:
    return {
        "api_key": key,
        "batch": [
            {
                "event": "signed up",
                "distinct_id": "user-1",
                "properties": {"plan": "pro", "email": "ana@example.com", "$lib": "posthog-python"},
                "uuid": UUID_1,
                "timestamp": "2024-03-01T10:20:30.123000+00:00",
            },
            {"event": "$pageview", "properties": {"distinct_id": "user-2", "$current_url": "https://example.com/café"}, "uuid": UUID_2},
        ],
        "sent_at": "2024-03-01T10:20:31+00:00",
    }  # fmt: skip


def lz64(text: str) -> str:
    """lz-string base64 of ``text``, from the vectors (the JavaScript original's output)."""
    return next(v["lz64"] for v in VECTORS if v["text"] == text)


# --- lz-string ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=range(len(VECTORS)))
def test_lz64_decodes_what_the_javascript_original_encoded(vector: dict[str, str]) -> None:
    assert decompress_from_base64(vector["lz64"], 10_000_000) == vector["text"]


def test_lz64_refuses_input_that_inflates_beyond_the_bound() -> None:
    long = next(v for v in VECTORS if len(v["text"]) > 3000)
    with pytest.raises(LzStringError, match="inflates"):
        decompress_from_base64(long["lz64"], 1000)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=200))
def test_lz64_on_arbitrary_input_gives_text_or_a_clean_refusal(text: str) -> None:
    with contextlib.suppress(LzStringError):
        decompress_from_base64(text, 100_000)


# --- the adapter --------------------------------------------------------------------------------


def test_a_batch_gives_one_record_per_event_and_its_keys() -> None:
    capture = posthog.decode(orjson.dumps(batch()), "application/json")
    assert capture.keys == {KEY_A}
    first, second = capture.decoded.records
    assert (first.event_type, first.client_id, first.timestamp) == (
        "signed up",
        UUID_1,
        "2024-03-01T10:20:30.123000Z",
    )
    assert first.body["distinct_id"] == "user-1" and first.body["properties"]["plan"] == "pro"
    assert (second.event_type, second.body["distinct_id"]) == ("$pageview", "user-2")
    assert KEY_A.encode() not in orjson.dumps([r.body for r in capture.decoded.records])


def test_posthog_js_arrays_carry_the_key_in_each_events_properties() -> None:
    events = [{"event": "$pageview", "properties": {"distinct_id": "u", "token": KEY_A}, "uuid": UUID_1}]
    capture = posthog.decode(orjson.dumps(events), "text/plain")
    assert capture.keys == {KEY_A}
    assert "token" not in capture.decoded.records[0].body["properties"]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (5, "not-an-object"),
        ({"distinct_id": "u"}, "missing-event"),
        ({"event": "x"}, "missing-distinct-id"),
        ({"event": "x", "distinct_id": ""}, "missing-distinct-id"),
        ({"event": "x", "distinct_id": "u", "uuid": 12}, "invalid-uuid"),
    ],
)
def test_bad_events_are_refused_alone(event: Any, code: str) -> None:
    good = {"event": "ok", "distinct_id": "u"}
    decoded = posthog.decode(orjson.dumps({"api_key": KEY_A, "batch": [good, event, good]}), None).decoded
    assert [(e.index, e.code) for e in decoded.errors] == [(1, code)]
    assert len(decoded.records) == 2


def test_every_encoding_posthog_clients_send_decodes_the_same() -> None:
    text = next(v["text"] for v in VECTORS if v["text"].startswith("[{"))
    expected = posthog.decode(text.encode(), "application/json")
    encoded = lz64(text)
    forms = [
        (gzip.compress(text.encode()), "text/plain", "gzip-js"),
        (gzip.compress(text.encode()), "text/plain", None),  # the magic bytes alone
        (encoded.encode(), "text/plain", "lz64"),
        (urllib.parse.urlencode({"data": encoded, "compression": "lz64"}).encode(), posthog.FORM, None),
        (urllib.parse.urlencode({"data": encoded}).encode(), posthog.FORM, "lz64"),
        (
            urllib.parse.urlencode({"data": base64.b64encode(text.encode()).decode()}).encode(),
            posthog.FORM,
            None,
        ),
        (urllib.parse.urlencode({"data": text}).encode(), posthog.FORM, None),
    ]
    for body, content_type, compression in forms:
        assert posthog.decode(body, content_type, compression) == expected, (content_type, compression)


@pytest.mark.parametrize(
    ("body", "content_type", "compression", "status", "code"),
    [
        (b"nope", None, None, 400, "invalid-json"),
        (b"5", None, None, 400, "invalid-json"),
        (b'{"batch": {}}', None, None, 400, "invalid-batch"),
        (b"\x1f\x8bxx", None, None, 400, "invalid-gzip"),
        (b"!!!", None, "lz64", 400, "invalid-lz64"),
        (b"data=%%%", posthog.FORM, None, 400, "invalid-json"),
        (b"other=1", posthog.FORM, None, 400, "invalid-form"),
        (gzip.compress(b"[" + b" " * 5000 + b"]"), None, None, 413, "decompressed-too-large"),
    ],
)
def test_unreadable_requests_are_refused_whole(
    body: bytes, content_type: str | None, compression: str | None, status: int, code: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        posthog.decode(body, content_type, compression, max_decompressed_bytes=1000)
    assert (refused.value.status, refused.value.code) == (status, code)


# --- the routes ---------------------------------------------------------------------------------


class Stack:
    def __init__(self) -> None:
        self.sqs, self.kinesis = MemorySink("sqs"), MemorySink("kinesis", batch_size=500)
        env = {"QUEUE_URL": "q", "STREAM_NAME": "s", "MAX_RECORDS": "500", "AUTH_MODE": "api_key"}
        from ingest.service import IngestService

        self.service = IngestService(IngestSettings.from_env(env), [self.sqs, self.kinesis])

    def stored(self) -> list[dict[str, Any]]:
        assert set(self.sqs.records) == set(self.kinesis.records)
        return [parse_envelope(text) for text in self.sqs.records.values()]


class FakeStore:
    down = False

    def lookup(self, key: str) -> str | None:
        if self.down:
            raise ConnectionError("store unreachable")
        return {KEY_A: "tenant-a", KEY_B: "tenant-b"}.get(key)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(keyauth, "key_cache", lambda: keyauth.KeyCache(fake.lookup))
    return fake


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, store: FakeStore) -> Iterator[Stack]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    s = Stack()
    monkeypatch.setattr(handler, "service", lambda: s.service)
    yield s


def call(
    route: str, body: bytes | Any, headers: dict[str, str] | None = None, query: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    event = http_event(route, data, headers)
    if query:
        event["queryStringParameters"] = query
    response = handler.lambda_handler(event, LambdaContext())
    headers_out = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return response["statusCode"], orjson.loads(response.get("body") or "null"), headers_out


@pytest.mark.parametrize("route", sorted(handler.POSTHOG_ROUTES))
def test_each_capture_route_stores_the_batch_under_the_keys_tenant(stack: Stack, route: str) -> None:
    status, body, _ = call(route, batch())
    assert (status, body) == (200, {"status": 1})
    stored = sorted(stack.stored(), key=lambda r: r["type"])
    assert [(r["type"], r["tenant_id"], r["source"]["protocol"]) for r in stored] == [
        ("$pageview", "tenant-a", "posthog"),
        ("signed up", "tenant-a", "posthog"),
    ]
    assert {r["client"]["event_id"] for r in stored} == {UUID_1, UUID_2}
    assert stored[1]["payload"]["properties"]["email"] == "[REDACTED:email]"
    assert KEY_A not in str(stack.sqs.records) and "api_key" not in str(stack.sqs.records)


def test_a_batch_sent_again_maps_to_the_same_event_ids(stack: Stack) -> None:
    call("POST /batch/", batch())
    first = set(stack.sqs.records)
    call("POST /batch/", gzip.compress(orjson.dumps(batch())), {"content-encoding": "gzip"})
    assert set(stack.sqs.records) == first and len(first) == 2


def test_lz64_from_posthog_js_through_the_route(stack: Stack) -> None:
    text = next(v["text"] for v in VECTORS if v["text"].startswith("[{"))
    form = urllib.parse.urlencode({"data": lz64(text)}).encode()
    # the vector's token is not a sluice key: the same events, re-keyed, must be sent by the test itself
    assert call("POST /e/", form, {"content-type": posthog.FORM}, {"compression": "lz64"})[0] == 401
    assert stack.stored() == []


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"batch": [{"event": "x", "distinct_id": "u"}]}, {}, 401, "unauthorized"),
        (batch("slk_" + "Z" * 43), {}, 401, "unauthorized"),
        (batch("phc_not_a_sluice_key"), {}, 401, "unauthorized"),
        # a key of tenant A can never write into tenant B, through any field
        ({**batch(KEY_A), "token": KEY_B}, {}, 403, "tenant-forbidden"),
        ({"api_key": KEY_A, "batch": [{"event": "x", "distinct_id": "u", "properties": {"token": KEY_B}}]}, {}, 403, "tenant-forbidden"),
        ({"api_key": KEY_A, "batch": [{"event": "x", "distinct_id": "u", "api_key": KEY_B}]}, {}, 403, "tenant-forbidden"),
        (batch(KEY_A), {"authorization": f"Bearer {KEY_B}"}, 403, "tenant-forbidden"),
        (batch(KEY_A), {"x-tenant-id": "tenant-b"}, 403, "tenant-forbidden"),
        ({"api_key": KEY_A, "batch": [{"event": ""}]}, {}, 400, "all-items-invalid"),
    ],
)  # fmt: skip
def test_refusals_are_in_posthogs_error_shape(
    stack: Stack, body: dict[str, Any], headers: dict[str, str], status: int, code: str
) -> None:
    got, answer, _ = call("POST /batch/", body, headers)
    assert (got, answer["code"]) == (status, code)
    assert answer["detail"] and answer["type"] and "attr" in answer
    assert stack.stored() == []


def test_body_fields_naming_another_tenant_are_only_payload(stack: Stack) -> None:
    event = {
        "event": "x",
        "distinct_id": "u",
        "tenant_id": "tenant-b",
        "properties": {"tenant_id": "tenant-b"},
    }
    assert call("POST /capture/", {"api_key": KEY_A, "tenant_id": "tenant-b", "batch": [event]})[0] == 200
    assert [r["tenant_id"] for r in stack.stored()] == ["tenant-a"]


def test_a_store_that_cannot_answer_fails_closed_with_a_retryable_503(stack: Stack, store: FakeStore) -> None:
    store.down = True
    status, body, headers = call("POST /batch/", batch())
    assert (status, body["code"], body["type"], headers.get("retry-after")) == (
        503,
        "auth-unavailable",
        "server_error",
        "2",
    )


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    body=st.binary(max_size=512),
    route=st.sampled_from(sorted(handler.POSTHOG_ROUTES)),
    content_type=st.sampled_from(["application/json", posthog.FORM, "text/plain"]),
    compression=st.sampled_from([None, "lz64", "gzip-js"]),
)
def test_any_bytes_on_the_capture_routes_give_2xx_or_4xx(
    stack: Stack, body: bytes, route: str, content_type: str, compression: str | None
) -> None:
    event = http_event(route, body, {"content-type": content_type})
    if compression:
        event["queryStringParameters"] = {"compression": compression}
    assert handler.lambda_handler(event, LambdaContext())["statusCode"] < 500


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
EVENT_FIELDS = ("event", "distinct_id", "uuid", "timestamp", "properties", "api_key", "token", "$set", "type")
EVENTS = st.dictionaries(st.sampled_from(EVENT_FIELDS), JSON_VALUES | st.just(KEY_A))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    document=st.dictionaries(
        st.sampled_from(("batch", "api_key", "token", "sent_at", *EVENT_FIELDS)),
        JSON_VALUES | st.lists(EVENTS | JSON_VALUES, max_size=4) | EVENTS | st.just(KEY_A),
    )
    | st.lists(EVENTS, max_size=4),
    route=st.sampled_from(sorted(handler.POSTHOG_ROUTES)),
)
def test_any_json_of_posthogs_shape_gives_2xx_or_4xx(stack: Stack, document: Any, route: str) -> None:
    response = handler.lambda_handler(http_event(route, orjson.dumps(document)), LambdaContext())
    assert response["statusCode"] < 500, response

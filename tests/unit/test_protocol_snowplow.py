"""The Snowplow tracker protocol: the adapter alone, then the tp2 and pixel routes through the handler.

The payloads follow the shapes of the examples in Snowplow's tracker protocol documentation (a
payload_data with a page view and a self-describing event with contexts), written for these tests.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import IngestSettings
from ingest import handler, keyauth
from ingest.apikeys import generate_key
from ingest.protocols import snowplow
from ingest.protocols.records import ProtocolError
from tests.support.fakes import LambdaContext, MemorySink, http_event, parse_envelope

KEY_A = generate_key()
KEY_B = generate_key()
EID_1 = "f3b8c1a2-7d4e-4c5b-9a1f-0e2d3c4b5a61"
EID_2 = "f3b8c1a2-7d4e-4c5b-9a1f-0e2d3c4b5a62"
LINK_CLICK = {
    "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
    "data": {
        "schema": "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1",
        "data": {"targetUrl": "https://example.com/café", "elementId": "buy"},
    },
}
CONTEXTS = {
    "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
    "data": [{"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"email": "ana@example.com"}}],
}


def b64url(doc: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")


def payload() -> dict[str, Any]:
    return {
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [
            {"e": "pv", "eid": EID_1, "aid": "shop", "p": "web", "tv": "py-1.1.0", "url": "https://example.com/",
             "page": "Home", "dtm": "1709288430123", "stm": "1709288431000", "co": orjson.dumps(CONTEXTS).decode()},
            {"e": "ue", "eid": EID_2, "aid": "shop", "p": "web", "tv": "py-1.1.0", "dtm": "1709288430200",
             "ttm": "1709288430100", "ue_px": b64url(LINK_CLICK), "cx": b64url(CONTEXTS)},
        ],
    }  # fmt: skip


# --- the adapter --------------------------------------------------------------------------------


def test_payload_data_gives_one_record_per_event_with_its_parts_decoded() -> None:
    decoded = snowplow.decode_post(orjson.dumps(payload()))
    assert decoded.errors == []
    page_view, click = decoded.records
    assert (page_view.event_type, page_view.client_id, page_view.timestamp) == (
        "pv",
        EID_1,
        "2024-03-01T10:20:30.123000Z",
    )
    assert page_view.body["contexts"] == CONTEXTS and "co" not in page_view.body
    assert page_view.body["page"] == "Home"
    assert click.event_type == "ue:iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1"
    assert click.timestamp == "2024-03-01T10:20:30.100000Z"  # the true timestamp wins
    assert click.body["unstruct_event"] == LINK_CLICK and click.body["contexts"] == CONTEXTS
    assert not {"ue_px", "cx"} & set(click.body)


def test_standard_base64_with_padding_decodes_too() -> None:
    event = {"e": "ue", "ue_px": base64.b64encode(orjson.dumps(LINK_CLICK)).decode()}
    (record,) = snowplow.decode_post(orjson.dumps({**payload(), "data": [event]})).records
    assert record.body["unstruct_event"] == LINK_CLICK


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (5, "not-an-object"),
        ({"eid": EID_1}, "missing-event"),
        ({"e": "pv", "eid": 5}, "invalid-eid"),
        ({"e": "ue", "ue_px": "!!!"}, "invalid-self-describing"),
        ({"e": "ue", "ue_pr": "{not json"}, "invalid-self-describing"),
        ({"e": "pv", "cx": b64url([1])[:-2] + "$$"}, "invalid-self-describing"),
    ],
)
def test_bad_events_are_refused_alone(event: Any, code: str) -> None:
    good = {"e": "pv", "eid": EID_1}
    decoded = snowplow.decode_post(orjson.dumps({**payload(), "data": [good, event, good]}))
    assert [(e.index, e.code) for e in decoded.errors] == [(1, code)]
    assert len(decoded.records) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[]",
        b'{"data": []}',
        b'{"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": []}',
        b'{"schema": 1, "data": {}}',
    ],
)
def test_unreadable_requests_are_refused_whole(body: bytes) -> None:
    with pytest.raises(ProtocolError) as refused:
        snowplow.decode_post(body)
    assert refused.value.status == 400


def test_a_pixel_is_one_event() -> None:
    decoded = snowplow.decode_get(
        {"e": "se", "eid": EID_1, "se_ca": "shop", "se_ac": "add", "dtm": "1709288430123"}
    )
    (record,) = decoded.records
    assert (record.event_type, record.client_id, record.body["se_ac"]) == ("se", EID_1, "add")
    assert [e.code for e in snowplow.decode_get({}).errors] == ["missing-event"]


@given(st.binary(max_size=512))
def test_any_bytes_decode_or_raise_a_client_error(body: bytes) -> None:
    status = 200
    try:
        snowplow.decode_post(body)
    except ProtocolError as exc:
        status = exc.status
    assert 200 <= status < 500


# --- the routes ---------------------------------------------------------------------------------


class Stack:
    def __init__(self) -> None:
        self.sqs, self.kinesis = MemorySink("sqs"), MemorySink("kinesis", batch_size=500)
        env = {"QUEUE_URL": "q", "STREAM_NAME": "s", "AUTH_MODE": "api_key"}
        from ingest.service import IngestService

        self.service = IngestService(IngestSettings.from_env(env), [self.sqs, self.kinesis])

    def stored(self) -> list[dict[str, Any]]:
        assert set(self.sqs.records) == set(self.kinesis.records)
        return [parse_envelope(text) for text in self.sqs.records.values()]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(
        keyauth, "key_cache", lambda: keyauth.KeyCache({KEY_A: "tenant-a", KEY_B: "tenant-b"}.get)
    )
    s = Stack()
    monkeypatch.setattr(handler, "service", lambda: s.service)
    yield s


def call(
    route: str,
    body: bytes | None,
    headers: dict[str, str] | None = None,
    key: str | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    event = http_event(route, body, headers)
    method, path = route.split(" ", 1)
    if key is not None:
        path = path.replace("{key}", key)
        event["pathParameters"] = {"key": key}
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    if query is not None:
        event["queryStringParameters"] = query
    return handler.lambda_handler(event, LambdaContext())


TP2 = "POST /com.snowplowanalytics.snowplow/tp2"
TP2_KEYED = "POST /t/{key}/com.snowplowanalytics.snowplow/tp2"


def test_a_key_in_the_collector_path_selects_the_tenant(stack: Stack) -> None:
    response = call(TP2_KEYED, orjson.dumps(payload()), key=KEY_A)
    assert response["statusCode"] == 200
    stored = sorted(stack.stored(), key=lambda r: r["type"])
    assert [(r["type"], r["tenant_id"], r["source"]["protocol"]) for r in stored] == [
        ("pv", "tenant-a", "snowplow"),
        ("ue:iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1", "tenant-a", "snowplow"),
    ]
    assert {r["client"]["event_id"] for r in stored} == {EID_1, EID_2}
    assert stored[0]["payload"]["contexts"]["data"][0]["data"]["email"] == "[REDACTED:email]"
    assert KEY_A not in str(stack.sqs.records)


def test_a_bearer_key_on_the_plain_path_selects_the_tenant(stack: Stack) -> None:
    assert call(TP2, orjson.dumps(payload()), {"authorization": f"Bearer {KEY_B}"})["statusCode"] == 200
    assert {r["tenant_id"] for r in stack.stored()} == {"tenant-b"}


def test_a_batch_sent_again_maps_to_the_same_event_ids(stack: Stack) -> None:
    call(TP2_KEYED, orjson.dumps(payload()), key=KEY_A)
    first = set(stack.sqs.records)
    call(TP2_KEYED, orjson.dumps(payload()), key=KEY_A)
    assert set(stack.sqs.records) == first and len(first) == 2


def test_the_pixel_answers_a_gif_once_the_event_is_durable(stack: Stack) -> None:
    response = call(
        "GET /t/{key}/i", None, key=KEY_A, query={"e": "pv", "eid": EID_1, "url": "https://example.com/"}
    )
    assert (response["statusCode"], response["headers"]["Content-Type"], response["isBase64Encoded"]) == (
        200,
        "image/gif",
        True,
    )
    assert base64.b64decode(response["body"]) == snowplow.PIXEL
    (record,) = stack.stored()
    assert (record["type"], record["tenant_id"], record["source"]["route"]) == (
        "pv",
        "tenant-a",
        "GET /t/{key}/i",
    )


@pytest.mark.parametrize(
    ("route", "headers", "key", "status"),
    [
        (TP2, {}, None, 401),
        (TP2, {"authorization": "Bearer slk_" + "Z" * 43}, None, 401),
        (TP2_KEYED, {}, "slk_" + "Z" * 43, 401),
        (TP2_KEYED, {}, "tenant-a", 401),  # a tenant name is not a key, and is not echoed
        # a key of tenant A can never write into tenant B, through any field
        (TP2_KEYED, {"authorization": f"Bearer {KEY_B}"}, KEY_A, 403),
        (TP2_KEYED, {"x-tenant-id": "tenant-b"}, KEY_A, 403),
    ],
)
def test_refusals(stack: Stack, route: str, headers: dict[str, str], key: str | None, status: int) -> None:
    response = call(route, orjson.dumps(payload()), headers, key)
    assert response["statusCode"] == status
    assert "tenant-a" not in response["body"] and "tenant-b" not in response["body"]
    assert stack.stored() == []


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    body=st.binary(max_size=512), query=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=5)
)
def test_any_bytes_on_the_snowplow_routes_give_2xx_or_4xx(
    stack: Stack, body: bytes, query: dict[str, str]
) -> None:
    assert call(TP2_KEYED, body, key=KEY_A)["statusCode"] < 500
    assert call("GET /t/{key}/i", None, key=KEY_A, query=query)["statusCode"] < 500


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
EVENT_FIELDS = ("e", "eid", "dtm", "ttm", "ue_pr", "ue_px", "co", "cx", "aid")
EVENTS = st.dictionaries(st.sampled_from(EVENT_FIELDS), JSON_VALUES | st.just(b64url(LINK_CLICK)))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.lists(EVENTS | JSON_VALUES, max_size=4), schema=st.sampled_from([payload()["schema"], "x", 5]))
def test_any_json_of_snowplows_shape_gives_2xx_or_4xx(stack: Stack, data: list[Any], schema: Any) -> None:
    body = orjson.dumps({"schema": schema, "data": data})
    assert call(TP2_KEYED, body, key=KEY_A)["statusCode"] < 500

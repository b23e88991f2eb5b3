"""The ingest use case with in-memory sinks: receipts, partial batches, tenants, and the 503 path."""

from __future__ import annotations

import gzip

import orjson
import pytest

from core.settings import IngestSettings
from ingest.problems import Problem
from ingest.protocols import native
from ingest.service import HttpRequest, IngestService
from tests.support.fakes import MemorySink, parse_envelope

SETTINGS = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s"})


def make(
    settings: IngestSettings = SETTINGS, **fail: tuple[str, bool]
) -> tuple[IngestService, MemorySink, MemorySink]:
    sqs, kinesis = MemorySink("sqs"), MemorySink("kinesis", batch_size=500)
    return IngestService(settings, [sqs, kinesis]), sqs, kinesis


def request(
    body: bytes | str, content_type: str = "application/json", route: str = "POST /events", **headers: str
) -> HttpRequest:
    text = body.decode() if isinstance(body, bytes) else body
    hdrs = {"content-type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return HttpRequest(route=route, headers=hdrs, body=text, request_id="r-1", source_ip="198.51.100.1")


def test_batch_with_invalid_items_accepts_the_valid_ones_with_a_receipt() -> None:
    # GIVEN an array with two events and two bad items
    service, sqs, kinesis = make()
    body = orjson.dumps([{"type": "a"}, 5, {"type": "b"}, {"tenant_id": "no way!"}])
    # WHEN it is ingested
    receipt = service.ingest(request(body), "event")
    # THEN the receipt lists both accepted ids in request order and each rejected index with its code
    assert native.encode(receipt).status == 202
    assert receipt.body["accepted"] == 2
    assert [(e["index"], e["code"]) for e in receipt.body["errors"]] == [
        (1, "not-an-object"),
        (3, "invalid-tenant"),
    ]
    ids = receipt.body["event_ids"]
    assert list(sqs.records) == ids and list(kinesis.records) == ids
    assert [parse_envelope(sqs.records[i])["type"] for i in ids] == ["a", "b"]


def test_every_item_invalid_is_422_with_the_item_errors() -> None:
    service, sqs, _ = make()
    with pytest.raises(Problem) as info:
        service.ingest(request(b"[1, 2]"), "event")
    assert info.value.status == 422
    assert [e["index"] for e in info.value.extra["errors"]] == [0, 1]
    assert not sqs.records


def test_503_with_retry_after_when_a_record_is_not_on_every_sink() -> None:
    # GIVEN a stream that refuses one record of the request
    service, sqs, kinesis = make()
    body = orjson.dumps([{"event_id": "e1"}, {"event_id": "e2"}])
    first = service.ingest(request(body, idempotency_key="k"), "event")
    ids = first.body["event_ids"]
    kinesis.fail = {ids[1]: ("ProvisionedThroughputExceededException", True)}
    # WHEN the same request is sent again THEN it is answered 503, never 202
    with pytest.raises(Problem) as info:
        service.ingest(request(body), "event")
    assert info.value.status == 503
    assert info.value.headers["Retry-After"]
    assert info.value.extra["errors_by_code"] == {"ProvisionedThroughputExceededException": 1}
    # AND a retry once the stream recovers maps to the same ids (no duplicates downstream)
    kinesis.fail = {}
    assert service.ingest(request(body), "event").body["event_ids"] == ids


def test_duplicate_identities_in_one_request_are_published_once() -> None:
    service, sqs, kinesis = make()
    receipt = service.ingest(request(orjson.dumps([{"event_id": "same"}, {"event_id": "same"}])), "event")
    assert receipt.body["accepted"] == 2
    assert receipt.body["event_ids"][0] == receipt.body["event_ids"][1]
    assert len(sqs.records) == len(kinesis.records) == 1


def test_client_ids_sharing_a_long_prefix_are_two_records() -> None:
    # GIVEN two events whose ids differ only after their first 512 characters
    service, sqs, kinesis = make()
    prefix = "x" * 512
    body = orjson.dumps([{"event_id": prefix + "1", "n": 1}, {"event_id": prefix + "2", "n": 2}])
    # WHEN they are ingested
    receipt = service.ingest(request(body), "event")
    # THEN both are accepted under two ids and both are on every sink
    ids = receipt.body["event_ids"]
    assert receipt.body["accepted"] == 2 and len(set(ids)) == 2
    assert list(sqs.records) == list(kinesis.records) == ids
    assert [parse_envelope(sqs.records[i])["payload"]["n"] for i in ids] == [1, 2]


def test_gzip_ndjson_logs() -> None:
    service, sqs, _ = make()
    body = gzip.compress(b'{"message":"m1","level":"info"}\n{"text":"m2"}\n')
    req = HttpRequest(
        route="POST /ingest",
        headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
        body=__import__("base64").b64encode(body).decode(),
        is_base64=True,
    )
    receipt = service.ingest(req, "log")
    assert [parse_envelope(sqs.records[i])["text"] for i in receipt.body["event_ids"]] == ["m1", "m2"]


def test_header_tenant_applies_to_every_item() -> None:
    service, sqs, _ = make()
    receipt = service.ingest(request(b"[{}, {}]", x_tenant_id="acme"), "event")
    assert {parse_envelope(sqs.records[i])["tenant_id"] for i in receipt.body["event_ids"]} == {"acme"}


@pytest.mark.parametrize("tenant", ["a/b", "acme\n"])
def test_invalid_header_tenant_is_400(tenant: str) -> None:
    service, sqs, _ = make()
    with pytest.raises(Problem) as info:
        service.ingest(request(b"{}", x_tenant_id=tenant), "event")
    assert (info.value.status, info.value.code) == (400, "invalid-tenant")
    assert not sqs.records


def test_api_key_mode_takes_the_tenant_only_from_the_authorizer() -> None:
    settings = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s", "AUTH_MODE": "api_key"})
    service, sqs, _ = make(settings)
    base = request(b"{}")
    with pytest.raises(Problem) as info:
        service.ingest(base, "event")
    assert info.value.status == 401
    authed = HttpRequest(route=base.route, headers=base.headers, body="{}", auth_tenant="acme")
    ids = service.ingest(authed, "event").body["event_ids"]
    assert parse_envelope(sqs.records[ids[0]])["tenant_id"] == "acme"
    for headers, body in [
        ({**base.headers, "x-tenant-id": "globex"}, "{}"),
        (base.headers, '{"tenant_id":"globex"}'),
    ]:
        with pytest.raises(Problem) as info:
            service.ingest(
                HttpRequest(route=base.route, headers=headers, body=body, auth_tenant="acme"), "event"
            )
        assert info.value.status == 403


@pytest.mark.parametrize(
    ("auth_tenant", "headers", "body"),
    [
        ("acme-secret-co", {"x-tenant-id": "globex-labs"}, "{}"),
        ("acme-secret-co", {}, '{"tenant_id":"globex-labs"}'),
        ("acme-secret-co", {}, '[{"n":1},{"tenant_id":"globex-labs"}]'),
        (None, {"x-tenant-id": "acme-secret-co"}, '{"tenant_id":"globex-labs"}'),
    ],
)
def test_tenant_forbidden_problems_never_echo_a_tenant_id(
    auth_tenant: str | None, headers: dict[str, str], body: str
) -> None:
    # GIVEN a request whose credential (or header) fixes a tenant, naming another one
    mode = "api_key" if auth_tenant else "none"
    service, sqs, _ = make(IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s", "AUTH_MODE": mode}))
    hdrs = {"content-type": "application/json", **headers}
    # WHEN it is ingested
    with pytest.raises(Problem) as info:
        service.ingest(
            HttpRequest(route="POST /events", headers=hdrs, body=body, auth_tenant=auth_tenant), "event"
        )
    # THEN it is refused 403, and the problem document names neither tenant: not even the caller's own
    document = orjson.dumps(info.value.to_dict(instance="r-1")).decode()
    assert (info.value.status, info.value.code) == (403, "tenant-forbidden")
    assert "acme-secret-co" not in document and "globex-labs" not in document
    assert not sqs.records


def test_partition_key_follows_the_setting() -> None:
    settings = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s", "PARTITION_KEY": "tenant_id"})
    service, _, _ = make(settings)
    records = service._out_records(service_accepted(service))
    assert {r.partition_key for r in records} == {"acme"}


def service_accepted(service: IngestService) -> list[tuple[int, dict[str, object], str, int]]:
    from ingest.normalize import RequestFacts, normalize

    facts = RequestFacts("POST /events", "event", "2026-11-22T10:15:30.123456Z", "acme")
    return normalize([(0, {}), (1, {})], facts, 1024, 64).accepted


def test_publish_budget_never_outlives_the_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an invocation with 3 s left and an 8 s publish budget
    from ingest import service as service_module

    seen: list[float] = []
    real = service_module.publish

    def spy(records, sinks, budget, pool=None):  # type: ignore[no-untyped-def]
        seen.append(budget)
        return real(records, sinks, budget, pool)

    monkeypatch.setattr(service_module, "publish", spy)
    service, _, _ = make()
    # WHEN a request is ingested THEN publishing gets what is left minus the reserve for answering
    service.ingest(request(b"{}"), "event", remaining_seconds=3.0)
    service.ingest(request(b"{}"), "event")
    assert seen == [1.0, SETTINGS.publish_budget_seconds]


# --- Ingest-side redaction: nothing raw at rest (issue 15) -------------------------------------------------

PLANTED_EMAIL = "jane.doe@example.com"
PLANTED_CARD = "4111 1111 1111 1111"
PLANTED_TOKEN = "planted-bearer-token-value-0123456789"
PLANTED = (PLANTED_EMAIL, PLANTED_CARD, PLANTED_TOKEN)


def _planted_requests() -> list[tuple[HttpRequest, str]]:
    event = {"type": f"signup {PLANTED_EMAIL}", "user": {"email": PLANTED_EMAIL, "password": "hunter2"},
             "note": f"card {PLANTED_CARD}", "headers": {"Authorization": f"Bearer {PLANTED_TOKEN}"}}  # fmt: skip
    line = f"ERROR login failed for {PLANTED_EMAIL} card={PLANTED_CARD} Authorization: Bearer {PLANTED_TOKEN}"
    return [
        (request(orjson.dumps(event), idempotency_key="k-1"), "event"),
        (request(line, "text/plain", route="POST /ingest"), "log"),
        (request(orjson.dumps({"message": line, "user": PLANTED_EMAIL}), route="POST /ingest"), "log"),
    ]


def test_ingest_redacts_before_the_queue_and_the_stream_by_default() -> None:
    # GIVEN the default settings and records carrying an e-mail, a card number and a bearer token
    service, sqs, kinesis = make()
    for req, kind in _planted_requests():
        # WHEN they are ingested
        receipt = service.ingest(req, kind)
        # THEN the receipt counts the replacements per rule (the handler turns them into metrics)
        assert receipt.redactions["email"] >= 1, receipt.redactions
    # AND neither the queue nor the stream holds any planted value, yet every record is a valid envelope
    for body in [*sqs.records.values(), *kinesis.records.values()]:
        parse_envelope(body)
        assert not [p for p in (*PLANTED, "hunter2") if p in body], body
    assert len(sqs.records) == len(kinesis.records) == 3


def test_ingest_redaction_off_publishes_raw_records() -> None:
    settings = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s", "INGEST_REDACTION": "off"})
    service, sqs, _ = make(settings)
    for req, kind in _planted_requests():
        assert not service.ingest(req, kind).redactions
    assert all(PLANTED_EMAIL in body for body in sqs.records.values())


def test_the_record_size_limit_applies_to_the_redacted_record() -> None:
    # GIVEN a record whose secret fields hold short values that redaction replaces by longer markers
    item = {f"user{i}": {"password": "x"} for i in range(40)}
    raw = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s", "INGEST_REDACTION": "off"})
    service_raw, sqs_raw, _ = make(raw)
    service_raw.ingest(request(orjson.dumps(item)), "event")
    raw_size = len(next(iter(sqs_raw.records.values())).encode())
    limit = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s", "MAX_RECORD_BYTES": str(raw_size)})
    service, sqs, _ = make(limit)
    # WHEN it is ingested with redaction on and a limit that the raw record just meets
    with pytest.raises(Problem) as info:
        service.ingest(request(orjson.dumps(item)), "event")
    # THEN the redacted (larger) record is refused: the limit protects what is published
    assert [e["code"] for e in info.value.extra["errors"]] == ["record-too-large"]
    assert not sqs.records

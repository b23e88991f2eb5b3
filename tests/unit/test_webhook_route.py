"""POST /webhooks/{source}: the signature is the credential, the tenant comes from the source's config."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from core.settings import IngestSettings
from ingest import handler, webhooks
from ingest.problems import Problem
from ingest.service import HttpRequest, IngestService
from tests.conftest import REPO
from tests.support.fakes import LambdaContext, MemorySink, http_event, parse_envelope

SECRET = "it's a secret to everybody"
CONFIG = {
    "gh": {"scheme": "github", "tenant_id": "acme", "secrets": [SECRET]},
    "stripe": {"scheme": "stripe", "tenant_id": "globex", "secrets": ["whsec_test"]},
}


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemorySink]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("WEBHOOK_SECRETS", orjson.dumps(CONFIG).decode())
    webhooks.configured_sources.cache_clear()
    sink = MemorySink("sqs")
    service = IngestService(
        IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s"}), [sink, MemorySink("k")]
    )
    monkeypatch.setattr(handler, "service", lambda: service)
    yield sink
    webhooks.configured_sources.cache_clear()


def call(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    event = http_event(f"POST {path}", body, headers)
    response = handler.lambda_handler(event, LambdaContext())
    return response["statusCode"], orjson.loads(response["body"])


def github_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "x-hub-signature-256": f"sha256={digest}",
        "x-github-event": "issues",
        "x-github-delivery": "d-42",
    }


def test_signed_github_delivery_is_accepted_for_the_configured_tenant(sqs: MemorySink, corpus: Path) -> None:
    body = (corpus / "webhooks" / "github" / "issues.opened.payload.json").read_bytes()
    status, receipt = call("/webhooks/gh", body, {**github_headers(body), "x-tenant-id": "acme"})
    assert status == 202
    record = parse_envelope(sqs.records[receipt["event_ids"][0]])  # type: ignore[index]
    assert record["tenant_id"] == "acme"
    assert record["type"] == "issues.opened"
    assert record["source"]["webhook"] == "gh"
    assert record["source"]["route"] == "POST /webhooks/{source}"
    # GitHub signs only the body: the identity is its digest, the headers are recorded as claimed
    assert record["client"]["event_id"] == f"sha256:{hashlib.sha256(body).hexdigest()}#0"
    assert record["source"]["delivery_id"] == "d-42"
    assert record["source"]["type_verified"] is False


def test_a_verified_webhook_record_names_the_webhook_route(sqs: MemorySink) -> None:
    body = b'{"action":"opened"}'
    status, receipt = call("/webhooks/gh", body, github_headers(body))
    assert status == 202
    record = parse_envelope(sqs.records[receipt["event_ids"][0]])  # type: ignore[index]
    assert record["source"]["route"] == "POST /webhooks/{source}"
    assert record["source"]["webhook"] == "gh"


def test_redelivery_of_the_same_delivery_maps_to_the_same_id(sqs: MemorySink) -> None:
    body = b'{"action":"opened"}'
    first = call("/webhooks/gh", body, github_headers(body))[1]
    again = call("/webhooks/gh", body, github_headers(body))[1]
    assert first["event_ids"] == again["event_ids"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/webhooks/gh", {}),
        ("/webhooks/gh", github_headers(b"other body")),
        ("/webhooks/gh", github_headers(b'{"a":1}', secret="wrong")),
        ("/webhooks/stripe", {"stripe-signature": "t=1,v1=00"}),
        ("/webhooks/nobody", {}),
        ("/webhooks/nobody", github_headers(b'{"a":1}')),
        ("/webhooks/acme-github", github_headers(b'{"a":1}', secret="wrong")),
    ],
)
def test_unknown_sources_and_bad_signatures_get_the_same_401_and_nothing_is_queued(
    sqs: MemorySink, path: str, headers: dict[str, str]
) -> None:
    # GIVEN the answer to a known source signed wrongly
    reference = call("/webhooks/gh", b'{"a":1}', {})
    # WHEN a source is unknown, or known but unsigned, badly signed or mis-signed
    got = call(path, b'{"a":1}', headers)
    # THEN the client cannot tell which: same status and the same problem body, word for word, so source
    # names (which often contain tenant names) cannot be enumerated
    assert got == reference
    assert (got[0], got[1]["code"]) == (401, "signature-invalid")
    assert not sqs.records


def test_the_operator_log_says_which_check_failed(sqs: MemorySink, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the ingest log captured
    stream = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", stream)
    monkeypatch.setattr(handler.logger._logger, "level", logging.INFO)
    # WHEN an unknown source and a badly signed known one are refused with the same answer
    call("/webhooks/nope", b'{"a":1}', {})
    call("/webhooks/gh", b'{"a":1}', github_headers(b'{"b":2}'))
    # THEN the log (never the body) tells the two apart
    refused = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["message"], r["code"], r["reason"]) for r in refused] == [
        ("request refused", "signature-invalid", "unknown_source"),
        ("request refused", "signature-invalid", "signature_mismatch"),
    ]


def test_header_naming_another_tenant_is_403(sqs: MemorySink) -> None:
    body = b'{"a":1}'
    status, problem = call("/webhooks/gh", body, {**github_headers(body), "x-tenant-id": "globex"})
    assert (status, problem["code"]) == (403, "tenant-forbidden")


def test_stripe_event_id_in_the_body_is_the_identity(sqs: MemorySink) -> None:
    body = b'{"id":"evt_123","type":"invoice.paid"}'
    stamp = str(int(time.time()))
    sig = hmac.new(b"whsec_test", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    status, receipt = call("/webhooks/stripe", body, {"stripe-signature": f"t={stamp},v1={sig}"})
    assert status == 202
    record = parse_envelope(sqs.records[receipt["event_ids"][0]])  # type: ignore[index]
    assert (record["tenant_id"], record["type"], record["client"]["event_id"]) == (
        "globex",
        "invoice.paid",
        "evt_123",
    )


def test_events_route_never_imports_the_webhook_verifier() -> None:
    # Cold starts pay for every module imported up front; signature checking belongs to the webhook route.
    code = (
        "import sys; from ingest import handler; from core.settings import IngestSettings; "
        "from ingest.service import IngestService; from tests.support.fakes import LambdaContext, MemorySink, "
        "http_event; svc = IngestService(IngestSettings.from_env({'QUEUE_URL': 'q', 'STREAM_NAME': 's'}), "
        "[MemorySink('a'), MemorySink('b')]); handler.service = lambda: svc; "
        "r = handler.lambda_handler(http_event('POST /events', '{}'), LambdaContext()); "
        "assert r['statusCode'] == 202, r; print('ingest.webhooks' in sys.modules)"
    )
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_service_verifies_the_raw_bytes_before_decoding(sqs: MemorySink) -> None:
    # GIVEN a gzip body signed over its compressed bytes, sent base64-encoded as API Gateway does
    body = gzip.compress(b'{"action":"opened"}')
    headers = {**github_headers(body), "content-type": "application/json", "content-encoding": "gzip"}
    request = HttpRequest(route="POST /webhooks/{source}", headers=headers, body=base64.b64encode(body).decode(),
                          is_base64=True)  # fmt: skip
    service = handler.service()
    # WHEN the service ingests it as a delivery of "gh" THEN it is accepted for the source's tenant
    receipt = service.ingest_webhook(request, "gh", now=time.time())
    assert receipt.accepted == 1
    assert parse_envelope(sqs.records[receipt.body["event_ids"][0]])["tenant_id"] == "acme"
    # AND a signature over the decompressed bytes is refused, the verifier's reason in the log only
    bad = replace(request, headers={**headers, **github_headers(b'{"action":"opened"}')})
    with pytest.raises(Problem) as info:
        service.ingest_webhook(bad, "gh", now=time.time())
    assert (info.value.status, info.value.code, info.value.extra) == (
        401,
        "signature-invalid",
        {"reason": "signature_invalid"},
    )
    assert info.value.log["reason"] == "signature_mismatch"
    assert len(sqs.records) == 1


# --- Integrity: identity and type only from signed material (issue 15) ------------------------------------

STANDARD_KEY = b"standard-webhooks-test-key-32byt"
STANDARD_CONFIG = {
    **CONFIG,
    "std": {
        "scheme": "standard",
        "tenant_id": "acme",
        "secrets": ["whsec_" + base64.b64encode(STANDARD_KEY).decode()],
    },
}


@pytest.fixture
def signed(sqs: MemorySink, monkeypatch: pytest.MonkeyPatch) -> MemorySink:
    monkeypatch.setenv("WEBHOOK_SECRETS", orjson.dumps(STANDARD_CONFIG).decode())
    webhooks.configured_sources.cache_clear()
    return sqs


def stripe_headers(body: bytes, stamp: int | None = None) -> dict[str, str]:
    t = str(int(time.time()) if stamp is None else stamp)
    sig = hmac.new(b"whsec_test", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={t},v1={sig}"}


def standard_headers(body: bytes, msg_id: str, stamp: int | None = None) -> dict[str, str]:
    t = str(int(time.time()) if stamp is None else stamp)
    mac = hmac.new(STANDARD_KEY, f"{msg_id}.{t}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": t,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def record_of(sink: MemorySink, receipt: dict[str, object]) -> dict[str, object]:
    return parse_envelope(sink.records[receipt["event_ids"][0]])  # type: ignore[index]


def test_stripe_type_comes_from_the_signed_body_not_an_unsigned_header(signed: MemorySink) -> None:
    # GIVEN a signed invoice.paid event, relabelled by an unsigned X-Event-Type header
    body = b'{"id":"evt_9","type":"invoice.paid"}'
    status, receipt = call(
        "/webhooks/stripe", body, {**stripe_headers(body), "x-event-type": "account.deleted"}
    )
    # THEN the record keeps the signed type, marked verified
    assert status == 202
    record = record_of(signed, receipt)
    assert record["type"] == "invoice.paid"
    assert record["source"]["type_verified"] is True  # type: ignore[index]


@pytest.mark.parametrize("header", ["x-event-type", "x-gitlab-event", "x-webhook-event", "x-github-event"])
def test_standard_type_headers_are_ignored(signed: MemorySink, header: str) -> None:
    body = b'{"type":"invoice.paid","data":{}}'
    status, receipt = call(
        "/webhooks/std", body, {**standard_headers(body, "msg_1"), header: "account.deleted"}
    )
    assert status == 202
    assert record_of(signed, receipt)["type"] == "invoice.paid"


def test_standard_identity_is_the_signed_webhook_id_not_an_idempotency_key(signed: MemorySink) -> None:
    # GIVEN a signed delivery, then the same delivery replayed inside the tolerance with a new Idempotency-Key
    body = b'{"type":"invoice.paid"}'
    first = call("/webhooks/std", body, standard_headers(body, "msg_1"))[1]
    replay = call("/webhooks/std", body, {**standard_headers(body, "msg_1"), "idempotency-key": "fresh"})[1]
    # THEN both name the same record, identified by the signed webhook-id
    assert first["event_ids"] == replay["event_ids"]
    assert record_of(signed, first)["client"] == {"event_id": "msg_1#0"}
    # AND another signed webhook-id is another record
    assert call("/webhooks/std", body, standard_headers(body, "msg_2"))[1]["event_ids"] != first["event_ids"]


def test_github_resent_body_with_a_new_delivery_id_is_the_same_record(signed: MemorySink) -> None:
    body = b'{"action":"opened","issue":{"number":1}}'
    first = call("/webhooks/gh", body, github_headers(body))[1]
    resent = call("/webhooks/gh", body, {**github_headers(body), "x-github-delivery": "d-forged"})[1]
    assert resent["event_ids"] == first["event_ids"]
    assert len(signed.records) == 1


def test_github_delivery_id_swap_cannot_overwrite_another_record(signed: MemorySink) -> None:
    # GIVEN two real deliveries of different bodies
    victim_body = b'{"action":"added","member":{"login":"alice"}}'
    victim = call("/webhooks/gh", victim_body, {**github_headers(victim_body), "x-github-delivery": "d-victim",
                                                 "x-github-event": "member"})[1]  # fmt: skip
    victim_text = signed.records[victim["event_ids"][0]]  # type: ignore[index]
    captured = b'{"action":"opened","issue":{"number":7}}'
    call("/webhooks/gh", captured, github_headers(captured))
    # WHEN the captured body is re-sent with the victim's delivery id and a forged event header
    headers = {**github_headers(captured), "x-github-delivery": "d-victim", "x-github-event": "member"}
    status, forged = call("/webhooks/gh", captured, headers)
    # THEN it lands on the captured body's own record, its type marked as claimed, and the victim is untouched
    assert status == 202
    assert forged["event_ids"] != victim["event_ids"]
    assert signed.records[victim["event_ids"][0]] == victim_text  # type: ignore[index]
    record = record_of(signed, forged)
    assert record["source"]["type_verified"] is False  # type: ignore[index]
    assert len(signed.records) == 2


def test_a_producer_event_id_cannot_derive_a_webhook_records_id(signed: MemorySink) -> None:
    # GIVEN webhook records of each scheme for tenant acme / globex
    gh_body = b'{"action":"opened"}'
    gh = call("/webhooks/gh", gh_body, github_headers(gh_body))[1]
    std_body = b'{"type":"invoice.paid"}'
    std = call("/webhooks/std", std_body, standard_headers(std_body, "msg_1"))[1]
    stripe_body = b'{"id":"evt_1","type":"invoice.paid"}'
    stripe = call("/webhooks/stripe", stripe_body, stripe_headers(stripe_body))[1]
    webhook_ids = {i for r in (gh, std, stripe) for i in r["event_ids"]}  # type: ignore[attr-defined]
    # WHEN a producer posts records whose own ids are those deliveries' identities, for the same tenants
    identities = [record_of(signed, r)["client"]["event_id"] for r in (gh, std, stripe)]  # type: ignore[index]
    for tenant in ("acme", "globex"):
        items = [{"event_id": i} for i in [*identities, "d-42#0", "msg_1", "evt_1"]]
        status, receipt = call("/events", orjson.dumps(items), {"x-tenant-id": tenant})
        assert status == 202
        # THEN none of its ids is a webhook record's id
        assert not webhook_ids & set(receipt["event_ids"])  # type: ignore[arg-type]


def test_a_webhook_body_event_id_is_not_its_identity(signed: MemorySink) -> None:
    # A body field other than the scheme's signed id never names a webhook record.
    body = b'{"type":"invoice.paid","event_id":"chosen"}'
    receipt = call("/webhooks/std", body, standard_headers(body, "msg_1"))[1]
    assert record_of(signed, receipt)["client"] == {"event_id": "msg_1#0"}


@pytest.mark.parametrize("age", [0, 299])
def test_replays_inside_the_window_are_the_same_record(signed: MemorySink, age: int) -> None:
    now = int(time.time())
    std_body = b'{"type":"invoice.paid"}'
    stripe_body = b'{"id":"evt_5","type":"invoice.paid"}'
    std = call("/webhooks/std", std_body, standard_headers(std_body, "msg_5", now))[1]
    stripe = call("/webhooks/stripe", stripe_body, stripe_headers(stripe_body, now))[1]
    # WHEN each delivery is replayed `age` seconds later, freshly signed by a sender that retries
    assert (
        call("/webhooks/std", std_body, standard_headers(std_body, "msg_5", now - age))[1]["event_ids"]
        == (std["event_ids"])
    )
    assert (
        call("/webhooks/stripe", stripe_body, stripe_headers(stripe_body, now - age))[1]["event_ids"]
        == (stripe["event_ids"])
    )
    assert len(signed.records) == 2


def test_replays_outside_the_window_are_refused_for_timestamped_schemes(signed: MemorySink) -> None:
    old = int(time.time()) - 3600
    std_body = b'{"type":"invoice.paid"}'
    stripe_body = b'{"id":"evt_5","type":"invoice.paid"}'
    assert call("/webhooks/std", std_body, standard_headers(std_body, "msg_5", old))[0] == 401
    assert call("/webhooks/stripe", stripe_body, stripe_headers(stripe_body, old))[0] == 401
    assert not signed.records


def test_github_replays_are_the_same_record_forever(signed: MemorySink) -> None:
    # GitHub signs no timestamp: a captured body is accepted again at any time, as the same record.
    body = b'{"action":"opened"}'
    first = call("/webhooks/gh", body, github_headers(body))[1]
    with pytest.MonkeyPatch.context() as later:
        later.setattr(time, "time", lambda: first_time + 10 * 86400)
        first_time = 1_800_000_000.0
        replay = call("/webhooks/gh", body, github_headers(body))[1]
    assert replay["event_ids"] == first["event_ids"]


def test_a_stripe_event_without_an_id_is_named_by_its_signed_body(signed: MemorySink) -> None:
    body = b'{"type":"invoice.paid"}'
    first = call("/webhooks/stripe", body, stripe_headers(body))[1]
    replay = call("/webhooks/stripe", body, stripe_headers(body))[1]
    assert first["event_ids"] == replay["event_ids"]
    assert record_of(signed, first)["client"] == {"event_id": f"sha256:{hashlib.sha256(body).hexdigest()}#0"}

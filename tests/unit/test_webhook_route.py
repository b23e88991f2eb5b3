"""POST /webhooks/{source}: the signature is the credential, the tenant comes from the source's config."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from core.settings import IngestSettings
from ingest import handler, webhooks
from ingest.service import IngestService
from tests.helpers import LambdaContext, MemorySink, http_event, parse_envelope

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
    assert record["client"]["event_id"] == "d-42#0"


def test_redelivery_of_the_same_delivery_maps_to_the_same_id(sqs: MemorySink) -> None:
    body = b'{"action":"opened"}'
    first = call("/webhooks/gh", body, github_headers(body))[1]
    again = call("/webhooks/gh", body, github_headers(body))[1]
    assert first["event_ids"] == again["event_ids"]


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "signature_missing"),
        (github_headers(b"other body"), 401, "signature_mismatch"),
        (github_headers(b'{"a":1}', secret="wrong"), 401, "signature_mismatch"),
    ],
)
def test_bad_signatures_are_401_and_nothing_is_queued(sqs: MemorySink, headers: dict[str, str], status: int,
                                                      reason: str) -> None:  # fmt: skip
    got, problem = call("/webhooks/gh", b'{"a":1}', headers)
    assert (got, problem["code"], problem["reason"]) == (status, "signature-invalid", reason)
    assert not sqs.records


def test_unknown_source_is_404(sqs: MemorySink) -> None:
    status, problem = call("/webhooks/nobody", b"{}", {})
    assert (status, problem["code"]) == (404, "unknown-webhook-source")


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

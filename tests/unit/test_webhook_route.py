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
    assert record["client"]["event_id"] == "d-42#0"


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

"""A tenant over its quota gets 429 on every route, in each protocol's own form, refused before the work
it would cost (ingest/service.py ``_admit``; the arithmetic is tests/unit/test_quotas.py)."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator

import orjson
import pytest

from core.settings import IngestSettings
from ingest import handler
from ingest.quotas import InMemoryQuotaStore, Limit, QuotaEnforcer, QuotaPolicy
from ingest.service import IngestService
from tests.support.fakes import LambdaContext, MemorySink, http_event

SETTINGS = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s"})


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def quota(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[IngestService, Clock]]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    clock = Clock()
    policy = QuotaPolicy(requests=Limit(2, 2), bytes=Limit(10_000, 10_000), records=Limit(10, 10))
    enforcer = QuotaEnforcer(policy, InMemoryQuotaStore(), clock)
    service = IngestService(SETTINGS, [MemorySink("sqs"), MemorySink("kinesis", batch_size=500)], enforcer)
    monkeypatch.setattr(handler, "service", lambda: service)
    yield service, clock


def call(event: dict[str, object]) -> tuple[int, dict[str, str], bytes]:
    response = handler.lambda_handler(event, LambdaContext())
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return response["statusCode"], headers, base64.b64decode(body)
    return response["statusCode"], headers, body.encode()


def events(n: int, tenant: str = "acme") -> dict[str, object]:
    return http_event("POST /events", orjson.dumps([{"n": i} for i in range(n)]), {"x-tenant-id": tenant})


def test_over_the_records_quota_is_429_problem_with_retry_after_and_ratelimit_headers(
    quota: tuple[IngestService, Clock],
) -> None:
    assert call(events(10))[0] == 202
    status, headers, body = call(events(5))
    assert status == 429
    assert headers["content-type"] == "application/problem+json"
    assert headers["retry-after"] == "1"
    assert headers["ratelimit"] == '"records";r=0;t=1'
    assert '"records";q=10;w=1' in headers["ratelimit-policy"]
    doc = orjson.loads(body)
    assert (doc["code"], doc["quota"], doc["retry_after"]) == ("throttled", "records", 1)
    published = quota[0].sinks[0]
    assert len(published.records) == 10  # type: ignore[attr-defined]


def test_requests_are_refused_before_the_body_is_read(quota: tuple[IngestService, Clock]) -> None:
    call(events(1))
    call(events(1))
    status, _, body = call(http_event("POST /events", "{not json", {"x-tenant-id": "acme"}))
    assert status == 429 and orjson.loads(body)["quota"] == "requests"  # not 400: the body was never read


def test_bytes_are_refused_from_the_size_as_sent_before_decompressing(
    quota: tuple[IngestService, Clock],
) -> None:
    bomb = gzip.compress(b"x" * 11_000)  # the size as sent fits, the decompressed size does not
    status, _, body = call(
        http_event(
            "POST /ingest",
            bomb,
            {"content-type": "text/plain", "content-encoding": "gzip", "x-tenant-id": "a"},
        )
    )
    assert status == 429 and orjson.loads(body)["quota"] == "bytes"
    big = b"y" * 10_001
    status, _, body = call(
        http_event("POST /ingest", big, {"content-type": "text/plain", "x-tenant-id": "b"})
    )
    assert status == 429 and orjson.loads(body)["quota"] == "bytes"


def test_one_tenant_over_quota_does_not_throttle_another(quota: tuple[IngestService, Clock]) -> None:
    call(events(10, "flood"))
    assert call(events(1, "flood"))[0] == 429
    assert call(events(10, "quiet"))[0] == 202


def test_the_quota_refills(quota: tuple[IngestService, Clock]) -> None:
    _, clock = quota
    call(events(10))
    assert call(events(10))[0] == 429
    clock.now += 1.0
    assert call(events(10))[0] == 202


def test_otlp_gets_429_status_with_retry_after(quota: tuple[IngestService, Clock]) -> None:
    from google.rpc.status_pb2 import Status
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    call(events(10))
    status, headers, body = call(
        http_event("POST /v1/logs", ExportLogsServiceRequest().SerializeToString(),
                   {"content-type": "application/x-protobuf", "x-tenant-id": "acme"})
    )  # fmt: skip
    assert status == 200  # the second request of this second: within 2 requests/s
    status, headers, body = call(
        http_event("POST /v1/logs", ExportLogsServiceRequest().SerializeToString(),
                   {"content-type": "application/x-protobuf", "x-tenant-id": "acme"})
    )  # fmt: skip
    assert status == 429
    assert headers["content-type"] == "application/x-protobuf" and headers["retry-after"] == "1"
    assert "quota" in Status.FromString(body).message


def test_loki_gets_429_plain_text_with_retry_after(quota: tuple[IngestService, Clock]) -> None:
    call(events(10))
    call(events(1, "other"))
    push = orjson.dumps({"streams": [{"stream": {"app": "a"}, "values": [["1700000000000000000", "hi"]]}]})
    status, headers, body = call(
        http_event(
            "POST /loki/api/v1/push", push, {"content-type": "application/json", "x-scope-orgid": "acme"}
        )
    )
    assert status == 429
    assert headers["content-type"].startswith("text/plain") and headers["retry-after"] == "1"
    assert b"quota" in body


def test_a_429_body_never_names_the_tenant(quota: tuple[IngestService, Clock]) -> None:
    call(events(10, tenant="acme-secret-tenant"))
    status, _, body = call(events(5, tenant="acme-secret-tenant"))
    assert status == 429 and b"acme-secret-tenant" not in body


def test_under_api_keys_an_unauthenticated_header_spends_no_tenants_quota() -> None:
    # GIVEN API keys on, and a request that names a victim tenant in a header but has no credential yet
    settings = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s", "AUTH_MODE": "api_key"})
    clock = Clock()
    enforcer = QuotaEnforcer(QuotaPolicy(requests=Limit(1, 1)), InMemoryQuotaStore(), clock)
    service = IngestService(settings, [MemorySink("sqs"), MemorySink("kinesis")], enforcer)
    from ingest.service import HttpRequest

    anonymous = HttpRequest(route="POST /batch", headers={"x-tenant-id": "victim"}, body="{}")
    # THEN it is charged to no tenant (a key in the body is checked later, and charged then)...
    assert service.quota_tenant(anonymous) is None
    for _ in range(5):
        service._admit(anonymous, requests=1)
    # ...so the victim's own authenticated request still has its whole quota
    service._admit(HttpRequest(route="POST /events", headers={}, body="{}", auth_tenant="victim"), requests=1)

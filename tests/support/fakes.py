"""Builders and in-memory fakes shared by the test layers."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.envelope import Envelope, validate
from core.retry import Deadline
from ingest.publish import OutRecord, SinkResult
from tests.conftest import load_event


def parse_envelope(text: str | bytes) -> Envelope:
    """A published message parsed and checked against the envelope schema (raises when it is not one)."""
    doc = orjson.loads(text)
    validate(doc)
    return doc  # type: ignore[no-any-return]


@dataclass
class LambdaContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name: str = "sluice-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sluice-test"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def http_event(
    route: str,
    body: bytes | str | None,
    headers: dict[str, str] | None = None,
    *,
    base64_encode: bool = False,
    authorizer_tenant: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for ``route`` such as ``"POST /events"``."""
    method, path = route.split(" ", 1)
    event = load_event("apigw_http_post_events")
    event["routeKey"] = route
    event["rawPath"] = path
    event["requestContext"]["routeKey"] = route
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["headers"] = {
        "content-type": "application/json",
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    if body is None:
        event.pop("body", None)
        event["isBase64Encoded"] = False
    elif base64_encode or isinstance(body, bytes):
        raw = body if isinstance(body, bytes) else body.encode()
        event["body"] = base64.b64encode(raw).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = body
        event["isBase64Encoded"] = False
    if authorizer_tenant is not None:
        event["requestContext"]["authorizer"] = {"lambda": {"tenant_id": authorizer_tenant, "key_id": "k1"}}
    return event


@dataclass
class MemorySink:
    """A RecordSink that keeps what it is given; ``fail`` names event ids it refuses (code, retryable)."""

    name: str
    batch_size: int = 10
    fail: dict[str, tuple[str, bool]] = field(default_factory=dict)
    records: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    def batches(self, records: list[OutRecord]) -> list[list[OutRecord]]:
        return [list(records[i : i + self.batch_size]) for i in range(0, len(records), self.batch_size)]

    def put_batch(self, batch: list[OutRecord], deadline: Deadline) -> SinkResult:
        self.calls += 1
        result = SinkResult()
        for record in batch:
            if record.event_id in self.fail:
                result.failed[record.event_id] = self.fail[record.event_id][0]
            else:
                self.records[record.event_id] = record.body
        return result

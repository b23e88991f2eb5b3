"""The native protocol's encoder: a receipt is a 202 JSON body, a refusal an RFC 9457 problem document."""

from __future__ import annotations

import orjson

from ingest.problems import PROBLEM_CONTENT_TYPE, Problem
from ingest.protocols import native
from ingest.service import Receipt


def test_a_receipt_is_answered_202_with_its_body_as_json() -> None:
    body = {"accepted": 1, "rejected": 0, "event_ids": ["e1"], "errors": [], "request_id": "r-1"}
    reply = native.encode(Receipt(body=body, accepted=1))
    assert (reply.status, reply.content_type, reply.headers) == (202, "application/json", {})
    assert orjson.loads(reply.body) == body


def test_a_problem_is_a_problem_document_with_its_headers_and_instance() -> None:
    problem = Problem(
        503, "publish-incomplete", "retry", extra={"retry_after": 2}, headers={"Retry-After": "2"}
    )
    reply = native.encode(problem, request_id="r-9")
    assert (reply.status, reply.content_type, reply.headers) == (
        503,
        PROBLEM_CONTENT_TYPE,
        {"Retry-After": "2"},
    )
    assert orjson.loads(reply.body) == {
        "type": "https://sluice.dev/problems/publish-incomplete",
        "title": "Records could not be durably queued",
        "status": 503,
        "detail": "retry",
        "code": "publish-incomplete",
        "instance": "r-9",
        "retry_after": 2,
    }

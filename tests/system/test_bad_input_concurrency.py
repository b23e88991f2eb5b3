"""Regression: concurrent local API requests must not read each other's event.

Found by the 10,000-request run (tests/system/test_bad_input.py): once in ~700 requests a request
with ``Content-Encoding: br`` (415) was answered 422, another client's outcome. Cause: Powertools keeps
the resolver's current event on the ``BaseRouter`` class, shared by every handler copy of the local
ContainerPool. This test makes the interleaving deterministic: while environment A handles its request,
environment B handles another one in between (as a second thread would).
"""

from __future__ import annotations

import inspect
from typing import Any

import orjson
import pytest

from local.sources import load_container
from tests.support.fakes import LambdaContext, http_event


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_URL", "http://127.0.0.1:1/000000000000/q")
    monkeypatch.setenv("STREAM_NAME", "s")
    monkeypatch.setenv("AUTH_MODE", "none")


def test_an_environment_keeps_its_own_event_while_another_handles_a_request(env: None) -> None:
    a, b = load_container("ingest.handler.lambda_handler"), load_container("ingest.handler.lambda_handler")
    module_a = inspect.unwrap(a).__globals__
    real_service = module_a["service"]
    inner: list[dict[str, Any]] = []

    def service_with_interleaving() -> Any:
        # B handles a request between A's routing and A reading its request (the race, made certain)
        inner.append(b(http_event("GET /health", None), LambdaContext()))
        return real_service()

    module_a["service"] = service_with_interleaving
    # WHEN A handles malformed JSON while B answers a health check in between
    outer = a(http_event("POST /events", "{oops", {"x-tenant-id": "acme"}), LambdaContext())
    # THEN each got the answer to its own request
    assert inner[0]["statusCode"] == 200
    assert outer["statusCode"] == 400
    assert orjson.loads(outer["body"])["code"] == "invalid-json"

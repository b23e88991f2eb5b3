"""The local API Gateway in front of the authorizer: 401 without a header, 403 on a "no", context handed on."""

from __future__ import annotations

from typing import Any

import pytest

from local.http import LocalApiGateway, build_event, match_route


class Authorizer:
    """A stand-in authorizer Lambda that records its calls and answers ``answer``."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return self.answer


def event_for(path: str, headers: dict[str, str]) -> dict[str, Any]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("198.51.100.7", 1234),
    }
    route_key, params, _ = match_route("POST", path)
    return build_event(scope, b"{}", route_key, params)


def gateway(authorizer: Authorizer) -> LocalApiGateway:
    return LocalApiGateway(handler=lambda event, context: {}, authorizer=authorizer)


def test_no_authorization_header_is_401_without_calling_the_authorizer() -> None:
    authorizer = Authorizer({"isAuthorized": True})
    denied = gateway(authorizer)._authorize(event_for("/events", {"content-type": "application/json"}))
    assert denied is not None and denied[0] == 401
    assert authorizer.events == []


def test_an_authorizer_no_is_403() -> None:
    authorizer = Authorizer({"isAuthorized": False})
    denied = gateway(authorizer)._authorize(event_for("/events", {"Authorization": "Bearer nope"}))
    assert denied is not None and denied[0] == 403
    assert authorizer.events[0]["headers"]["authorization"] == "Bearer nope"


@pytest.mark.parametrize("path", ["/events", "/ingest"])
def test_an_authorizer_yes_hands_its_context_on_where_api_gateway_puts_it(path: str) -> None:
    context = {"tenant_id": "acme", "key_id": "AbCdEfGh"}
    event = event_for(path, {"Authorization": "Bearer k"})
    assert gateway(Authorizer({"isAuthorized": True, "context": context}))._authorize(event) is None
    assert event["requestContext"]["authorizer"] == {"lambda": context}


def test_the_gateway_runs_as_many_invocations_at_once_as_its_concurrency_not_the_default_executor() -> None:
    # GIVEN a handler that returns only once 10 invocations are inside it at the same time
    import asyncio
    import threading

    together = threading.Barrier(10, timeout=10)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        together.wait()
        return {"statusCode": 202, "body": "{}"}

    app = LocalApiGateway(handler=handler, concurrency=16)

    async def one() -> int:
        sent: list[dict[str, Any]] = []
        scope = {"type": "http", "method": "POST", "path": "/events", "headers": [], "query_string": b""}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return int(sent[0]["status"])

    async def ten() -> list[int]:
        return await asyncio.gather(*(one() for _ in range(10)))

    # WHEN 10 requests arrive at once THEN all 10 run concurrently (asyncio's default executor has 6
    # threads on a 2-core machine: the barrier would break and the gateway answer 500)
    assert asyncio.run(ten()) == [202] * 10

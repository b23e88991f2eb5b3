"""Regression test of local/patches/powertools_current_event.py: concurrent resolvers keep their own request.

Two copies of a handler module (two local execution environments) resolve at once. Without the patch
both read ``BaseRouter.current_event``, the class attribute the later ``resolve`` overwrote.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from local.patches import PatchMismatch, powertools_current_event
from tests.conftest import load_event
from tests.support.fakes import LambdaContext

pytestmark = pytest.mark.integration


def environment(barrier: threading.Barrier) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    @app.post("/events")
    def post() -> dict[str, Any]:
        barrier.wait(5)  # both requests are inside a route: the later resolve has set its event
        return {"seen": app.current_event.headers.get("x-tenant-id")}

    return app


def test_concurrent_resolvers_each_read_their_own_event() -> None:
    # GIVEN two environments' resolvers, isolated by the patch
    barrier = threading.Barrier(2)
    apps = [environment(barrier), environment(barrier)]
    for app in apps:
        powertools_current_event.isolate(app)
    answers: dict[str, str] = {}

    def call(app: APIGatewayHttpResolver, tenant: str) -> None:
        event = load_event("apigw_http_post_events")
        event["headers"]["x-tenant-id"] = tenant
        answers[tenant] = orjson.loads(app.resolve(event, LambdaContext())["body"])["seen"]

    # WHEN they resolve two requests at once
    threads = [
        threading.Thread(target=call, args=(app, t)) for app, t in zip(apps, ("acme", "globex"), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # THEN each route read its own request's tenant
    assert answers == {"acme": "acme", "globex": "globex"}


def test_the_patch_refuses_to_load_on_another_powertools_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(powertools_current_event, "CHECKED", "0.0.1")
    powertools_current_event.check.cache_clear()
    try:
        with pytest.raises(
            PatchMismatch, match=r"aws_lambda_powertools 0.0.1, but aws_lambda_powertools \S+ is installed"
        ):
            powertools_current_event.check()
    finally:
        powertools_current_event.check.cache_clear()

"""The HTTP routes are declared once, in core/wiring.json: the handler, the local gateway and Terraform agree."""

from __future__ import annotations

import re
from dataclasses import replace

import orjson
import pytest

from core import wiring
from ingest import handler
from local import http
from tests.conftest import REPO

WIRED = {(r.method, r.path) for r in wiring.load().routes}


def test_the_wiring_declares_each_route_once_with_a_known_function() -> None:
    routes = wiring.load().routes
    assert len(WIRED) == len(routes)
    assert {r.function for r in routes} <= set(wiring.load().handlers)


def test_the_ingest_handler_registers_exactly_the_wired_routes() -> None:
    # Powertools keeps its routes in private lists; the path uses <name> where API Gateway uses {name}.
    registered = handler.app._static_routes + handler.app._dynamic_routes
    assert {(r.method, re.sub(r"<(\w+)>", r"{\1}", r.path)) for r in registered} == WIRED


def test_the_local_gateway_serves_exactly_the_wired_routes() -> None:
    local = {(r.method, r.key.split(" ", 1)[1]) for r in http.routes()}
    assert local == WIRED
    guarded = {r.key for r in http.routes() if r.protected}
    assert guarded == {r.key for r in wiring.load().routes if r.authorizer}


def test_the_local_gateway_refuses_a_route_another_function_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    real = wiring.load()
    other = replace(real, routes=(*real.routes, wiring.RouteWiring("GET /x", False, "worker")))
    monkeypatch.setattr(wiring, "load", lambda: other)
    http.routes.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="GET /x"):
            http.routes()
    finally:
        http.routes.cache_clear()


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/events", ("POST /events", {}, True)),
        ("POST", "/webhooks/gh", ("POST /webhooks/{source}", {"source": "gh"}, False)),
        ("POST", "/webhooks/gh/more", ("$default", {}, False)),
        ("GET", "/openapi.json", ("GET /openapi.json", {}, False)),
        ("GET", "/openapiXjson", ("$default", {}, False)),
        ("GET", "/events", ("$default", {}, False)),
    ],
)
def test_local_route_matching(method: str, path: str, expected: tuple[str, dict[str, str], bool]) -> None:
    assert http.match_route(method, path) == expected


def test_every_wired_route_reaches_its_handler_not_the_404_fallback() -> None:
    for route in wiring.load().routes:
        path = route.path.replace("{source}", "gh")
        assert http.match_route(route.method, path)[0] == route.key


def test_terraform_takes_the_routes_from_the_wiring() -> None:
    # tests/api.tftest.hcl checks the created routes against core/wiring.json; this checks the module has
    # no second list of its own.
    api = (REPO / "infra" / "api.tf").read_text()
    assert re.search(r"^\s*routes\s*=\s*local\.wiring\.routes\s*$", api, re.MULTILINE)
    route = api[api.index('resource "aws_apigatewayv2_route" "this"') :]
    assert re.search(r"^\s*for_each\s*=\s*local\.routes\s*$", route, re.MULTILINE)
    assert not re.search(r'"(GET|POST|PUT|DELETE|PATCH) /', api), "a route key is written in infra/api.tf"
    wiring_tf = (REPO / "infra" / "locals.tf").read_text()
    assert "core/wiring.json" in wiring_tf


def test_every_ingesting_route_names_the_kind_of_record_it_carries() -> None:
    # source.route must be the route a record came by (the envelope schema enumerates them): a route
    # missing from ROUTE_KIND would fall back to "POST /events" and the log kind.
    from ingest.service import ROUTE_KIND

    plain = {"GET /health", "GET /openapi.json"}
    declared = {route.key for route in wiring.load().routes} - plain
    assert set(ROUTE_KIND) == declared
    schema = orjson.loads((REPO / "core/schema/envelope.v1.json").read_bytes())
    assert set(schema["properties"]["source"]["properties"]["route"]["enum"]) == declared | {"replay"}
